//! The ingest records (one per NDJSON line) and the enums they use.

use super::Day;

/// The six services of the services report, in report column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Exchange = 0,
    OneDrive = 1,
    SharePoint = 2,
    SkypeForBusiness = 3,
    Yammer = 4,
    Teams = 5,
}

impl Service {
    pub const ALL: [Service; 6] = [
        Service::Exchange,
        Service::OneDrive,
        Service::SharePoint,
        Service::SkypeForBusiness,
        Service::Yammer,
        Service::Teams,
    ];
    pub const NAMES: &'static str =
        "exchange, oneDrive, sharePoint, skypeForBusiness, yammer, teams";

    /// The ingest spelling.
    pub fn parse(s: &str) -> Option<Service> {
        Some(match s {
            "exchange" => Service::Exchange,
            "oneDrive" => Service::OneDrive,
            "sharePoint" => Service::SharePoint,
            "skypeForBusiness" => Service::SkypeForBusiness,
            "yammer" => Service::Yammer,
            "teams" => Service::Teams,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Exchange => "exchange",
            Service::OneDrive => "oneDrive",
            Service::SharePoint => "sharePoint",
            Service::SkypeForBusiness => "skypeForBusiness",
            Service::Yammer => "yammer",
            Service::Teams => "teams",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: usize) -> Option<Service> {
        Service::ALL.get(i).copied()
    }
}

/// The workloads whose per-user daily activity counters are ingested (`activityCounts`
/// records): each has up to [`MAX_COUNTERS`] named counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    Exchange = 0,
    OneDrive = 1,
    SharePoint = 2,
}

/// Counters per `activityCounts` record, whatever the workload (unused ones stay 0).
pub const MAX_COUNTERS: usize = 5;

impl Workload {
    pub const ALL: [Workload; 3] = [Workload::Exchange, Workload::OneDrive, Workload::SharePoint];
    pub const NAMES: &'static str = "exchange, oneDrive, sharePoint";

    pub fn parse(s: &str) -> Option<Workload> {
        Some(match s {
            "exchange" => Workload::Exchange,
            "oneDrive" => Workload::OneDrive,
            "sharePoint" => Workload::SharePoint,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Workload::Exchange => "exchange",
            Workload::OneDrive => "oneDrive",
            Workload::SharePoint => "sharePoint",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: usize) -> Option<Workload> {
        Workload::ALL.get(i).copied()
    }

    /// The service whose activity a non-zero counter is (for the core reports).
    pub fn service(self) -> Service {
        match self {
            Workload::Exchange => Service::Exchange,
            Workload::OneDrive => Service::OneDrive,
            Workload::SharePoint => Service::SharePoint,
        }
    }

    /// The ingest field names of the workload's counters, in storage order.
    pub fn counters(self) -> &'static [&'static str] {
        match self {
            Workload::Exchange => &[
                "send",
                "receive",
                "read",
                "meetingCreated",
                "meetingInteracted",
            ],
            Workload::OneDrive => &[
                "viewedOrEdited",
                "synced",
                "sharedInternally",
                "sharedExternally",
            ],
            Workload::SharePoint => &[
                "viewedOrEdited",
                "synced",
                "sharedInternally",
                "sharedExternally",
                "visitedPages",
            ],
        }
    }
}

/// A user's mailbox (key: the user): when it was created and deleted, its quotas in bytes
/// (issue warning, prohibit send, prohibit send/receive, deleted items) and archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mailbox {
    pub created: Day,
    pub deleted: Option<Day>,
    pub recipient_type: RecipientType,
    pub issue_warning_quota: u64,
    pub prohibit_send_quota: u64,
    pub prohibit_send_receive_quota: u64,
    pub deleted_item_quota: u64,
    pub has_archive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientType {
    User = 0,
    Shared = 1,
    Room = 2,
    Equipment = 3,
}

impl RecipientType {
    pub const NAMES: &'static str = "user, shared, room, equipment";

    pub fn parse(s: &str) -> Option<RecipientType> {
        Some(match s {
            "user" => RecipientType::User,
            "shared" => RecipientType::Shared,
            "room" => RecipientType::Room,
            "equipment" => RecipientType::Equipment,
            _ => return None,
        })
    }

    pub fn from_index(i: usize) -> Option<RecipientType> {
        [
            RecipientType::User,
            RecipientType::Shared,
            RecipientType::Room,
            RecipientType::Equipment,
        ]
        .get(i)
        .copied()
    }
}

/// A mailbox's state on one day (key: user and date); it holds until a later day's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MailboxState {
    pub item_count: u64,
    pub storage_used: u64,
    pub deleted_item_count: u64,
    pub deleted_item_size: u64,
}

/// A site: a user's OneDrive account or a SharePoint site (key: its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub id: String,
    pub kind: SiteKind,
    pub url: String,
    /// The owner's user id (required for a OneDrive account).
    pub owner: Option<String>,
    pub root_web_template: String,
    pub created: Day,
    pub deleted: Option<Day>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SiteKind {
    OneDrive = 0,
    SharePoint = 1,
}

impl SiteKind {
    pub fn parse(s: &str) -> Option<SiteKind> {
        match s {
            "oneDrive" => Some(SiteKind::OneDrive),
            "sharePoint" => Some(SiteKind::SharePoint),
            _ => None,
        }
    }

    pub fn from_index(i: usize) -> Option<SiteKind> {
        [SiteKind::OneDrive, SiteKind::SharePoint].get(i).copied()
    }
}

/// A site's state on one day (key: site and date); it holds until a later day's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SiteState {
    pub file_count: u64,
    pub active_file_count: u64,
    pub page_view_count: u64,
    pub visited_page_count: u64,
    pub storage_used: u64,
    pub storage_allocated: u64,
}

/// The email clients of the email app usage reports, in their column order, as the
/// `emailClients` record names them.
pub const EMAIL_APPS: [&str; 9] = [
    "mailForMac",
    "outlookForMac",
    "outlookForWindows",
    "outlookForMobile",
    "otherForMobile",
    "outlookForWeb",
    "pop3App",
    "imap4App",
    "smtpApp",
];

/// The Outlook versions of EmailAppUsageVersionsUserCounts, as `outlookVersion` names them.
pub const OUTLOOK_VERSIONS: [&str; 7] = [
    "2007",
    "2010",
    "2013",
    "2016",
    "2019",
    "M365",
    "undetermined",
];

/// Activation platforms, in ActivationCounts column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    Windows = 0,
    Mac = 1,
    Android = 2,
    Ios = 3,
    Windows10Mobile = 4,
}

impl Platform {
    pub const ALL: [Platform; 5] = [
        Platform::Windows,
        Platform::Mac,
        Platform::Android,
        Platform::Ios,
        Platform::Windows10Mobile,
    ];
    pub const NAMES: &'static str = "windows, mac, android, ios, windows10Mobile";

    pub fn parse(s: &str) -> Option<Platform> {
        Some(match s {
            "windows" => Platform::Windows,
            "mac" => Platform::Mac,
            "android" => Platform::Android,
            "ios" => Platform::Ios,
            "windows10Mobile" => Platform::Windows10Mobile,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Windows => "windows",
            Platform::Mac => "mac",
            Platform::Android => "android",
            Platform::Ios => "ios",
            Platform::Windows10Mobile => "windows10Mobile",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: usize) -> Option<Platform> {
        Platform::ALL.get(i).copied()
    }
}

/// A validity interval `[start, end)`: held on day `d` when `start <= d` and `end` is none or
/// after `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: Day,
    pub end: Option<Day>,
}

impl Span {
    pub fn holds_on(&self, d: Day) -> bool {
        self.start <= d && self.end.is_none_or(|e| e > d)
    }
}

/// One device activation of a product by a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    pub product_type: String,
    pub device_id: String,
    pub platform: Platform,
    pub active: Span,
    pub shared_computer: bool,
}

/// One validated ingest line. User references are still by external id here; the engine
/// resolves them against the tenant's users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    User {
        id: String,
        user_principal_name: String,
        display_name: String,
        deleted: Option<Day>,
    },
    ServiceLicense {
        user_id: String,
        service: Service,
        span: Span,
    },
    ProductAssignment {
        user_id: String,
        product_type: String,
        span: Span,
    },
    Activation {
        user_id: String,
        activation: Activation,
    },
    Activity {
        user_id: String,
        service: Service,
        date: Day,
    },
    /// The compact bulk form: one user's activity in one service on many dates.
    ActivityDates {
        user_id: String,
        service: Service,
        dates: Vec<Day>,
    },
    /// One user's activity counters in one workload on one day (key: user, workload, date).
    ActivityCounts {
        user_id: String,
        workload: Workload,
        date: Day,
        counts: [u32; MAX_COUNTERS],
    },
    Mailbox {
        user_id: String,
        mailbox: Mailbox,
    },
    MailboxDay {
        user_id: String,
        date: Day,
        state: MailboxState,
    },
    Site {
        site: Site,
    },
    SiteDay {
        site_id: String,
        date: Day,
        state: SiteState,
    },
    /// The email clients (bits in [`EMAIL_APPS`] order) and Outlook version (index into
    /// [`OUTLOOK_VERSIONS`]) a user used on a day (key: user and date).
    EmailClients {
        user_id: String,
        date: Day,
        apps: u16,
        outlook_version: Option<u8>,
    },
    Refresh {
        date: Day,
    },
}

impl Record {
    /// The user this record refers to, for records other than `user` and `refresh`.
    pub fn referenced_user(&self) -> Option<&str> {
        match self {
            Record::User { .. } | Record::Refresh { .. } | Record::SiteDay { .. } => None,
            Record::Site { site } => site.owner.as_deref(),
            Record::ServiceLicense { user_id, .. }
            | Record::ProductAssignment { user_id, .. }
            | Record::Activation { user_id, .. }
            | Record::Activity { user_id, .. }
            | Record::ActivityDates { user_id, .. }
            | Record::ActivityCounts { user_id, .. }
            | Record::Mailbox { user_id, .. }
            | Record::MailboxDay { user_id, .. }
            | Record::EmailClients { user_id, .. } => Some(user_id),
        }
    }
}
