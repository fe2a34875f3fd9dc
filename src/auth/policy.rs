//! What a verified token may do, as Graph's reports authorization rules state it.

use super::{AuthError, Claims};
use crate::model::TenantId;

pub const REPORTS_READ_ALL: &str = "Reports.Read.All";
/// The app role that lets a caller ingest data for its own tenant (reportroot's own).
pub const REPORT_DATA_WRITE: &str = "ReportData.ReadWrite.All";
/// Microsoft's personal-account tenant: not supported by the reports APIs.
pub const PERSONAL_ACCOUNTS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// The admin roles (template ids) that may read usage reports with a delegated token.
pub const REPORT_READER_ROLES: [&str; 9] = [
    "62e90394-69f5-4237-9190-012177145e10", // Global Administrator
    "29232cdf-9323-42fd-ade2-1d097af3e4de", // Exchange Administrator
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c", // SharePoint Administrator
    "75941009-915a-4869-abe7-691bff18279e", // Skype for Business Administrator
    "69091246-20e8-4a56-aa4d-066075b2a7a8", // Teams Administrator
    "baf37b3a-610e-45da-9e62-d9d1e5e8914b", // Teams Communications Administrator
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451", // Global Reader
    "75934031-6c7e-415a-99d7-48dbd49e875e", // Usage Summary Reports Reader
    "4a5d8f65-41da-4de4-8968-e035b65339cf", // Reports Reader
];

/// Admin roles that see tenant-level totals only, never the per-user detail reports:
/// Global Reader and Usage Summary Reports Reader.
pub const SUMMARY_ONLY_ROLES: [&str; 2] = [
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "75934031-6c7e-415a-99d7-48dbd49e875e",
];

/// Global Administrator: the only delegated role that may change report settings.
pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

pub const REPORT_SETTINGS_READ: &str = "ReportSettings.Read.All";
pub const REPORT_SETTINGS_WRITE: &str = "ReportSettings.ReadWrite.All";

/// Which reports a call reads: tenant totals, or per-user detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    Summary,
    Detail,
}

fn has_role(claims: &Claims, ids: &[&str]) -> bool {
    claims
        .wids
        .iter()
        .any(|w| ids.iter().any(|r| r.eq_ignore_ascii_case(w)))
}

fn tenant_of(claims: &Claims) -> Result<TenantId, AuthError> {
    if claims.tid.eq_ignore_ascii_case(PERSONAL_ACCOUNTS_TENANT) {
        return Err(AuthError::Forbidden(
            "Personal Microsoft accounts are not supported for this API.".into(),
        ));
    }
    TenantId::parse(&claims.tid).ok_or_else(|| {
        AuthError::Invalid("Access token validation failure: invalid 'tid' claim.".into())
    })
}

/// May read usage reports (detail reports need more than the summary-only roles); returns
/// the tenant to read (the token's own).
pub fn read_reports(claims: &Claims, reading: Reading) -> Result<TenantId, AuthError> {
    let tenant = tenant_of(claims)?;
    if claims.is_delegated() {
        if !claims
            .scopes()
            .any(|s| s.eq_ignore_ascii_case(REPORTS_READ_ALL))
        {
            return Err(AuthError::Forbidden(
                "Invalid permission: the token's scopes do not include Reports.Read.All.".into(),
            ));
        }
        let admin = claims.wids.iter().any(|w| {
            REPORT_READER_ROLES
                .iter()
                .any(|r| r.eq_ignore_ascii_case(w))
        });
        if !admin {
            return Err(AuthError::Forbidden(
                "The signed-in user holds no administrator role that may read usage reports."
                    .into(),
            ));
        }
        let detail_roles: Vec<&str> = REPORT_READER_ROLES
            .iter()
            .copied()
            .filter(|r| !SUMMARY_ONLY_ROLES.contains(r))
            .collect();
        if reading == Reading::Detail && !has_role(claims, &detail_roles) {
            return Err(AuthError::Forbidden(
                "The signed-in user's roles (Global Reader, Usage Summary Reports Reader) see tenant-level reports only, not per-user detail."
                    .into(),
            ));
        }
    } else if !claims
        .roles
        .iter()
        .any(|r| r.eq_ignore_ascii_case(REPORTS_READ_ALL))
    {
        return Err(AuthError::Forbidden(
            "Invalid permission: the application lacks the Reports.Read.All role.".into(),
        ));
    }
    Ok(tenant)
}

/// May ingest data for `target`: an application token of that tenant with the write role.
pub fn write_report_data(claims: &Claims, target: &TenantId) -> Result<(), AuthError> {
    let tenant = tenant_of(claims)?;
    if claims.is_delegated() || !claims.roles.iter().any(|r| r == REPORT_DATA_WRITE) {
        return Err(AuthError::Forbidden(format!(
            "Invalid permission: ingest needs an application token with the {REPORT_DATA_WRITE} role."
        )));
    }
    if &tenant != target {
        return Err(AuthError::Forbidden(
            "The token's tenant does not match the tenant in the URL.".into(),
        ));
    }
    Ok(())
}

/// May read (`write == false`) or change the tenant's report settings; returns the tenant.
/// Applications need `ReportSettings.Read.All` or `ReportSettings.ReadWrite.All` (the latter
/// to change); delegated callers the same scopes, a reports admin role to read and Global
/// Administrator to change.
pub fn report_settings(claims: &Claims, write: bool) -> Result<TenantId, AuthError> {
    let tenant = tenant_of(claims)?;
    let wanted: &[&str] = if write {
        &[REPORT_SETTINGS_WRITE]
    } else {
        &[REPORT_SETTINGS_READ, REPORT_SETTINGS_WRITE]
    };
    let granted = if claims.is_delegated() {
        claims
            .scopes()
            .any(|s| wanted.iter().any(|w| w.eq_ignore_ascii_case(s)))
    } else {
        claims
            .roles
            .iter()
            .any(|r| wanted.iter().any(|w| w.eq_ignore_ascii_case(r)))
    };
    if !granted {
        return Err(AuthError::Forbidden(format!(
            "Invalid permission: this call needs {}.",
            wanted.join(" or ")
        )));
    }
    if claims.is_delegated() {
        let role_ok = if write {
            has_role(claims, &[GLOBAL_ADMINISTRATOR])
        } else {
            has_role(claims, &REPORT_READER_ROLES)
        };
        if !role_ok {
            return Err(AuthError::Forbidden(if write {
                "Only a Global Administrator may change report settings.".into()
            } else {
                "The signed-in user holds no administrator role that may read report settings."
                    .into()
            }));
        }
    }
    Ok(tenant)
}
