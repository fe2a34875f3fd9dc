//! The generic shape every report computation produces: rows of [`Cell`]s, grouped by the
//! entity they describe (a user, a day, a product type), handed one by one to a [`Sink`].
//! The API renders them as CSV or JSON without knowing which report they came from.

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::{Day, Period};

/// One field of a report row. The column definition in the catalogue says its name; the
/// cell says its value and so how it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell<'a> {
    Int(u64),
    Text(Cow<'a, str>),
    /// Empty in CSV and `null` in JSON when absent.
    Date(Option<Day>),
    /// `True`/`False` in CSV, a JSON boolean.
    Bool(bool),
    /// `+`-joined in CSV (Assigned Products), a JSON array of strings.
    List(Vec<Cow<'a, str>>),
    /// The Report Period: a bare number in CSV, a string in JSON (as Graph writes them).
    Period(u32),
}

impl Cell<'_> {
    pub fn into_owned(self) -> Cell<'static> {
        match self {
            Cell::Int(n) => Cell::Int(n),
            Cell::Text(t) => Cell::Text(Cow::Owned(t.into_owned())),
            Cell::Date(d) => Cell::Date(d),
            Cell::Bool(b) => Cell::Bool(b),
            Cell::List(l) => {
                Cell::List(l.into_iter().map(|t| Cow::Owned(t.into_owned())).collect())
            }
            Cell::Period(n) => Cell::Period(n),
        }
    }
}

/// What a report is asked for, besides the tenant's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Args {
    None,
    Period(Period),
    /// `date=yyyy-MM-dd`: the report as of that single day.
    Date(Day),
}

/// One computation request: the arguments, whether names are concealed, and where to start
/// (the entity cursor: a user ordinal for detail reports, a row index for the others).
#[derive(Debug, Clone)]
pub struct Query {
    pub args: Args,
    pub conceal: Option<Concealer>,
    pub from: u32,
}

impl Query {
    pub fn whole(args: Args, conceal: Option<Concealer>) -> Query {
        Query {
            args,
            conceal,
            from: 0,
        }
    }
}

/// Receives a report's rows in order. Rows of one entity come together, then
/// [`Sink::entity_done`]; returning `false` there stops the computation (a page is full).
pub trait Sink {
    fn row(&mut self, entity: u32, cells: &[Cell<'_>]);
    fn entity_done(&mut self) -> bool {
        true
    }
    /// How many more entities the sink takes, when it stops early (a JSON page): detail
    /// reports size their first chunk of users by it.
    fn entities_wanted(&self) -> Option<usize> {
        None
    }
}

/// Collects every row, owned (small reports, tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rows(pub Vec<Vec<Cell<'static>>>);

impl Sink for Rows {
    fn row(&mut self, _entity: u32, cells: &[Cell<'_>]) {
        self.0
            .push(cells.iter().cloned().map(Cell::into_owned).collect());
    }
}

/// Graph's concealed user names: a 32-character upper-case hex digest of the user id, keyed
/// per tenant with a secret, so that hashing guessed names or ids reveals nothing. The same
/// user gets the same digest in every column and every report.
#[derive(Clone)]
pub struct Concealer {
    key: [u8; 32],
}

impl std::fmt::Debug for Concealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Concealer(..)")
    }
}

impl Concealer {
    pub fn new(key: [u8; 32]) -> Concealer {
        Concealer { key }
    }

    pub fn digest(&self, user_id: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(user_id.as_bytes());
        let d = m.finalize().into_bytes();
        let mut out = String::with_capacity(32);
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        for b in &d[..16] {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
        out
    }
}
