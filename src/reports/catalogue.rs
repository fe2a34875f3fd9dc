//! The report catalogue: every function reportroot serves as one declarative entry — its
//! Graph name, parameters, columns in Graph's order with their JSON names, how its JSON
//! nests, what data it depends on, and its computation. The API renders CSV, JSON, paging,
//! concealment, ETags, the 302 and `$metadata` from these entries alone, so adding a report
//! is one entry here plus its computation.

use super::table::{Query, Sink};
use super::{ReportError, activations, active_users, email_apps, mailbox, services, sites, usage};
use crate::engine::TenantState;

/// What a function takes in its parentheses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Params {
    None,
    /// `period='Dn'`, required.
    Period,
    /// `period='Dn'` or `date=yyyy-MM-dd`, exactly one.
    PeriodOrDate,
}

/// Summary reports list tenant-level numbers (rows per product, per day, one row); detail
/// reports list one entity (a user) per JSON entry: paged JSON, streamed CSV, concealed
/// names, and refused to the summary-only admin roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Summary,
    Detail,
}

/// The data a report reads, for caching: activation reports ignore activity (but not R).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depends {
    Directory,
    All,
}

/// The value type of a column (for `$metadata`; cells carry their own values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Date,
    Int,
    Text,
    Bool,
    /// A list of strings (`+`-joined in CSV).
    List,
    /// The Report Period (a number in CSV, a string in JSON).
    Period,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The CSV header, verbatim.
    pub csv: &'static str,
    /// The beta JSON property name.
    pub json: &'static str,
    pub ty: ColType,
}

/// JSON nesting: columns from `from` on go into an array property `name` (one object per
/// CSV row of the entity), the columns before it once per entity.
#[derive(Debug, Clone, Copy)]
pub struct Nest {
    pub from: usize,
    pub name: &'static str,
    /// The OData type of the nested objects.
    pub entity: &'static str,
}

pub type ComputeFn = fn(&TenantState, &Query, &mut dyn Sink) -> Result<(), ReportError>;

pub struct ReportDef {
    /// The Graph function name, e.g. `getOffice365ActiveUserDetail`.
    pub name: &'static str,
    /// The OData type of the JSON entries (`microsoft.graph.{entity}`).
    pub entity: &'static str,
    pub params: Params,
    pub kind: Kind,
    pub depends: Depends,
    pub columns: &'static [Column],
    pub nest: Option<Nest>,
    /// The 2017 form without `get`: v1.0 answers CSV, beta answers JSON, no `$format`.
    pub legacy: bool,
    pub compute: ComputeFn,
}

impl std::fmt::Debug for ReportDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// A function's position in [`CATALOGUE`]: small, `Copy`, and a cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportId(u16);

impl ReportId {
    pub fn def(self) -> &'static ReportDef {
        &CATALOGUE[self.0 as usize]
    }

    /// Looks a function up by name, case-insensitively (as Graph does).
    pub fn lookup(name: &str) -> Option<ReportId> {
        CATALOGUE
            .iter()
            .position(|d| d.name.eq_ignore_ascii_case(name))
            .map(|i| ReportId(i as u16))
    }

    pub fn all() -> impl Iterator<Item = ReportId> {
        (0..CATALOGUE.len()).map(|i| ReportId(i as u16))
    }
}

const fn col(csv: &'static str, json: &'static str, ty: ColType) -> Column {
    Column { csv, json, ty }
}

use ColType::{Bool, Date, Int, List, Period as Per, Text};

const REFRESH: Column = col("Report Refresh Date", "reportRefreshDate", Date);
const UPN: Column = col("User Principal Name", "userPrincipalName", Text);
const DISPLAY: Column = col("Display Name", "displayName", Text);

const ACTIVATIONS_USER_COUNTS: &[Column] = &[
    REFRESH,
    col("Product Type", "productType", Text),
    col("Assigned", "assigned", Int),
    col("Activated", "activated", Int),
    col(
        "Shared Computer Activation",
        "sharedComputerActivation",
        Int,
    ),
];

const ACTIVATION_COUNTS: &[Column] = &[
    REFRESH,
    col("Product Type", "productType", Text),
    col("Windows", "windows", Int),
    col("Mac", "mac", Int),
    col("Android", "android", Int),
    col("iOS", "ios", Int),
    col("Windows 10 Mobile", "windows10Mobile", Int),
];

const ACTIVATIONS_USER_DETAIL: &[Column] = &[
    REFRESH,
    UPN,
    DISPLAY,
    col("Product Type", "productType", Text),
    col("Last Activated Date", "lastActivatedDate", Date),
    col("Windows", "windows", Int),
    col("Mac", "mac", Int),
    col("Windows 10 Mobile", "windows10Mobile", Int),
    col("iOS", "ios", Int),
    col("Android", "android", Int),
    col(
        "Activated On Shared Computer",
        "activatedOnSharedComputer",
        Bool,
    ),
];

const SERVICES_USER_COUNTS: &[Column] = &[
    REFRESH,
    col("Exchange Active", "exchangeActive", Int),
    col("Exchange Inactive", "exchangeInactive", Int),
    col("OneDrive Active", "oneDriveActive", Int),
    col("OneDrive Inactive", "oneDriveInactive", Int),
    col("SharePoint Active", "sharePointActive", Int),
    col("SharePoint Inactive", "sharePointInactive", Int),
    col("Skype For Business Active", "skypeForBusinessActive", Int),
    col(
        "Skype For Business Inactive",
        "skypeForBusinessInactive",
        Int,
    ),
    col("Yammer Active", "yammerActive", Int),
    col("Yammer Inactive", "yammerInactive", Int),
    col("Teams Active", "teamsActive", Int),
    col("Teams Inactive", "teamsInactive", Int),
    col("Office 365 Active", "office365Active", Int),
    col("Office 365 Inactive", "office365Inactive", Int),
    col("Report Period", "reportPeriod", Per),
];

const ACTIVE_USER_COUNTS: &[Column] = &[
    REFRESH,
    col("Office 365", "office365", Int),
    col("Exchange", "exchange", Int),
    col("OneDrive", "oneDrive", Int),
    col("SharePoint", "sharePoint", Int),
    col("Skype For Business", "skypeForBusiness", Int),
    col("Yammer", "yammer", Int),
    col("Teams", "teams", Int),
    col("Report Date", "reportDate", Date),
    col("Report Period", "reportPeriod", Per),
];

const ACTIVE_USER_DETAIL: &[Column] = &[
    REFRESH,
    UPN,
    DISPLAY,
    col("Is Deleted", "isDeleted", Bool),
    col("Deleted Date", "deletedDate", Date),
    col("Has Exchange License", "hasExchangeLicense", Bool),
    col("Has OneDrive License", "hasOneDriveLicense", Bool),
    col("Has SharePoint License", "hasSharePointLicense", Bool),
    col(
        "Has Skype For Business License",
        "hasSkypeForBusinessLicense",
        Bool,
    ),
    col("Has Yammer License", "hasYammerLicense", Bool),
    col("Has Teams License", "hasTeamsLicense", Bool),
    col(
        "Exchange Last Activity Date",
        "exchangeLastActivityDate",
        Date,
    ),
    col(
        "OneDrive Last Activity Date",
        "oneDriveLastActivityDate",
        Date,
    ),
    col(
        "SharePoint Last Activity Date",
        "sharePointLastActivityDate",
        Date,
    ),
    col(
        "Skype For Business Last Activity Date",
        "skypeForBusinessLastActivityDate",
        Date,
    ),
    col("Yammer Last Activity Date", "yammerLastActivityDate", Date),
    col("Teams Last Activity Date", "teamsLastActivityDate", Date),
    col(
        "Exchange License Assign Date",
        "exchangeLicenseAssignDate",
        Date,
    ),
    col(
        "OneDrive License Assign Date",
        "oneDriveLicenseAssignDate",
        Date,
    ),
    col(
        "SharePoint License Assign Date",
        "sharePointLicenseAssignDate",
        Date,
    ),
    col(
        "Skype For Business License Assign Date",
        "skypeForBusinessLicenseAssignDate",
        Date,
    ),
    col(
        "Yammer License Assign Date",
        "yammerLicenseAssignDate",
        Date,
    ),
    col("Teams License Assign Date", "teamsLicenseAssignDate", Date),
    col("Assigned Products", "assignedProducts", List),
];

const REPORT_DATE: Column = col("Report Date", "reportDate", Date);
const REPORT_PERIOD: Column = col("Report Period", "reportPeriod", Per);
const IS_DELETED: Column = col("Is Deleted", "isDeleted", Bool);
const DELETED_DATE: Column = col("Deleted Date", "deletedDate", Date);
const LAST_ACTIVITY: Column = col("Last Activity Date", "lastActivityDate", Date);
const ASSIGNED_PRODUCTS: Column = col("Assigned Products", "assignedProducts", List);

const EMAIL_ACTIVITY_COUNTS: &[Column] = &[
    REFRESH,
    col("Send", "send", Int),
    col("Receive", "receive", Int),
    col("Read", "read", Int),
    col("Meeting Created", "meetingCreated", Int),
    col("Meeting Interacted", "meetingInteracted", Int),
    REPORT_DATE,
    REPORT_PERIOD,
];

const EMAIL_ACTIVITY_USER_DETAIL: &[Column] = &[
    REFRESH,
    UPN,
    DISPLAY,
    IS_DELETED,
    DELETED_DATE,
    LAST_ACTIVITY,
    col("Send Count", "sendCount", Int),
    col("Receive Count", "receiveCount", Int),
    col("Read Count", "readCount", Int),
    col("Meeting Created Count", "meetingCreatedCount", Int),
    col("Meeting Interacted Count", "meetingInteractedCount", Int),
    ASSIGNED_PRODUCTS,
    REPORT_PERIOD,
];

const FILE_COUNTS: &[Column] = &[
    REFRESH,
    col("Viewed Or Edited", "viewedOrEdited", Int),
    col("Synced", "synced", Int),
    col("Shared Internally", "sharedInternally", Int),
    col("Shared Externally", "sharedExternally", Int),
    REPORT_DATE,
    REPORT_PERIOD,
];

const ONEDRIVE_ACTIVITY_USER_DETAIL: &[Column] = &[
    REFRESH,
    UPN,
    IS_DELETED,
    DELETED_DATE,
    LAST_ACTIVITY,
    col(
        "Viewed Or Edited File Count",
        "viewedOrEditedFileCount",
        Int,
    ),
    col("Synced File Count", "syncedFileCount", Int),
    col(
        "Shared Internally File Count",
        "sharedInternallyFileCount",
        Int,
    ),
    col(
        "Shared Externally File Count",
        "sharedExternallyFileCount",
        Int,
    ),
    ASSIGNED_PRODUCTS,
    REPORT_PERIOD,
];

const SHAREPOINT_ACTIVITY_PAGES: &[Column] = &[
    REFRESH,
    col("Visited Page Count", "visitedPageCount", Int),
    REPORT_DATE,
    REPORT_PERIOD,
];

const SHAREPOINT_ACTIVITY_USER_COUNTS: &[Column] = &[
    REFRESH,
    col("Visited Page", "visitedPage", Int),
    col("Viewed Or Edited", "viewedOrEdited", Int),
    col("Synced", "synced", Int),
    col("Shared Internally", "sharedInternally", Int),
    col("Shared Externally", "sharedExternally", Int),
    REPORT_DATE,
    REPORT_PERIOD,
];

const SHAREPOINT_ACTIVITY_USER_DETAIL: &[Column] = &[
    REFRESH,
    UPN,
    IS_DELETED,
    DELETED_DATE,
    LAST_ACTIVITY,
    col(
        "Viewed Or Edited File Count",
        "viewedOrEditedFileCount",
        Int,
    ),
    col("Synced File Count", "syncedFileCount", Int),
    col(
        "Shared Internally File Count",
        "sharedInternallyFileCount",
        Int,
    ),
    col(
        "Shared Externally File Count",
        "sharedExternallyFileCount",
        Int,
    ),
    col("Visited Page Count", "visitedPageCount", Int),
    ASSIGNED_PRODUCTS,
    REPORT_PERIOD,
];

const MAILBOX_USAGE_DETAIL: &[Column] = &[
    REFRESH,
    UPN,
    DISPLAY,
    IS_DELETED,
    DELETED_DATE,
    col("Created Date", "createdDate", Date),
    LAST_ACTIVITY,
    col("Item Count", "itemCount", Int),
    col("Storage Used (Byte)", "storageUsedInBytes", Int),
    col(
        "Issue Warning Quota (Byte)",
        "issueWarningQuotaInBytes",
        Int,
    ),
    col(
        "Prohibit Send Quota (Byte)",
        "prohibitSendQuotaInBytes",
        Int,
    ),
    col(
        "Prohibit Send/Receive Quota (Byte)",
        "prohibitSendReceiveQuotaInBytes",
        Int,
    ),
    col("Deleted Item Count", "deletedItemCount", Int),
    col("Deleted Item Size (Byte)", "deletedItemSizeInBytes", Int),
    // Graph's beta JSON names this one without "InBytes" (catalogue discrepancy note).
    col("Deleted Item Quota (Byte)", "deletedItemQuota", Int),
    col("Has Archive", "hasArchive", Bool),
    REPORT_PERIOD,
];

const MAILBOX_COUNTS: &[Column] = &[
    REFRESH,
    col("Total", "total", Int),
    col("Active", "active", Int),
    REPORT_DATE,
    REPORT_PERIOD,
];

const QUOTA_STATUS_COUNTS: &[Column] = &[
    REFRESH,
    col("Under Limit", "underLimit", Int),
    col("Warning Issued", "warningIssued", Int),
    col("Send Prohibited", "sendProhibited", Int),
    col("Send/Receive Prohibited", "sendReceiveProhibited", Int),
    col("Indeterminate", "indeterminate", Int),
    REPORT_DATE,
    REPORT_PERIOD,
];

const MAILBOX_STORAGE: &[Column] = &[
    REFRESH,
    col("Storage Used (Byte)", "storageUsedInBytes", Int),
    REPORT_DATE,
    REPORT_PERIOD,
];

const SITE_TYPE: Column = col("Site Type", "siteType", Text);
const STORAGE_USED: Column = col("Storage Used (Byte)", "storageUsedInBytes", Int);

const SITE_TOTALS: &[Column] = &[
    REFRESH,
    SITE_TYPE,
    col("Total", "total", Int),
    col("Active", "active", Int),
    REPORT_DATE,
    REPORT_PERIOD,
];

const SITE_STORAGE: &[Column] = &[REFRESH, SITE_TYPE, STORAGE_USED, REPORT_DATE, REPORT_PERIOD];

const SITE_PAGES: &[Column] = &[
    REFRESH,
    SITE_TYPE,
    col("Page View Count", "pageViewCount", Int),
    REPORT_DATE,
    REPORT_PERIOD,
];

const ONEDRIVE_ACCOUNT_DETAIL: &[Column] = &[
    REFRESH,
    col("Site URL", "siteUrl", Text),
    col("Owner Display Name", "ownerDisplayName", Text),
    IS_DELETED,
    LAST_ACTIVITY,
    col("File Count", "fileCount", Int),
    col("Active File Count", "activeFileCount", Int),
    STORAGE_USED,
    col("Storage Allocated (Byte)", "storageAllocatedInBytes", Int),
    col("Owner Principal Name", "ownerPrincipalName", Text),
    REPORT_PERIOD,
];

const SHAREPOINT_SITE_DETAIL: &[Column] = &[
    REFRESH,
    col("Site Id", "siteId", Text),
    col("Site URL", "siteUrl", Text),
    col("Owner Display Name", "ownerDisplayName", Text),
    IS_DELETED,
    LAST_ACTIVITY,
    col("File Count", "fileCount", Int),
    col("Active File Count", "activeFileCount", Int),
    col("Page View Count", "pageViewCount", Int),
    col("Visited Page Count", "visitedPageCount", Int),
    STORAGE_USED,
    col("Storage Allocated (Byte)", "storageAllocatedInBytes", Int),
    col("Root Web Template", "rootWebTemplate", Text),
    col("Owner Principal Name", "ownerPrincipalName", Text),
    REPORT_PERIOD,
];

const EMAIL_APPS_COLUMNS: [Column; 9] = [
    col("Mail For Mac", "mailForMac", Int),
    col("Outlook For Mac", "outlookForMac", Int),
    col("Outlook For Windows", "outlookForWindows", Int),
    col("Outlook For Mobile", "outlookForMobile", Int),
    col("Other For Mobile", "otherForMobile", Int),
    col("Outlook For Web", "outlookForWeb", Int),
    col("POP3 App", "pop3App", Int),
    col("IMAP4 App", "imap4App", Int),
    col("SMTP App", "smtpApp", Int),
];

const fn apps<const N: usize>(head: [Column; 1], tail: &[Column]) -> [Column; N] {
    let mut out = [REFRESH; N];
    out[0] = head[0];
    let mut i = 0;
    while i < EMAIL_APPS_COLUMNS.len() {
        out[1 + i] = EMAIL_APPS_COLUMNS[i];
        i += 1;
    }
    let mut j = 0;
    while j < tail.len() {
        out[1 + EMAIL_APPS_COLUMNS.len() + j] = tail[j];
        j += 1;
    }
    out
}

const EMAIL_APPS_USER_COUNTS: [Column; 11] = apps([REFRESH], &[REPORT_PERIOD]);
const EMAIL_APP_USER_COUNTS: [Column; 12] = apps([REFRESH], &[REPORT_DATE, REPORT_PERIOD]);

/// The app columns are `Yes` or empty per user (text).
const EMAIL_APP_USER_DETAIL: &[Column] = &[
    REFRESH,
    UPN,
    DISPLAY,
    IS_DELETED,
    DELETED_DATE,
    LAST_ACTIVITY,
    col("Mail For Mac", "mailForMac", Text),
    col("Outlook For Mac", "outlookForMac", Text),
    col("Outlook For Windows", "outlookForWindows", Text),
    col("Outlook For Mobile", "outlookForMobile", Text),
    col("Other For Mobile", "otherForMobile", Text),
    col("Outlook For Web", "outlookForWeb", Text),
    col("POP3 App", "pop3App", Text),
    col("IMAP4 App", "imap4App", Text),
    col("SMTP App", "smtpApp", Text),
    REPORT_PERIOD,
];

/// Graph's order: Report Period sits between Undetermined and Outlook M365.
const EMAIL_VERSIONS_USER_COUNTS: &[Column] = &[
    REFRESH,
    col("Outlook 2016", "outlook2016", Int),
    col("Outlook 2013", "outlook2013", Int),
    col("Outlook 2010", "outlook2010", Int),
    col("Outlook 2007", "outlook2007", Int),
    col("Undetermined", "undetermined", Int),
    REPORT_PERIOD,
    col("Outlook M365", "outlookM365", Int),
    col("Outlook 2019", "outlook2019", Int),
];

/// A summary report of the workload families: `period` only, every batch may change it.
const fn daily(
    name: &'static str,
    entity: &'static str,
    columns: &'static [Column],
    compute: ComputeFn,
) -> ReportDef {
    ReportDef {
        name,
        entity,
        params: Params::Period,
        kind: Kind::Summary,
        depends: Depends::All,
        columns,
        nest: None,
        legacy: false,
        compute,
    }
}

/// A per-user (or per-site) report of the workload families: `period` or `date=`.
const fn per_user(
    name: &'static str,
    entity: &'static str,
    columns: &'static [Column],
    compute: ComputeFn,
) -> ReportDef {
    ReportDef {
        name,
        entity,
        params: Params::PeriodOrDate,
        kind: Kind::Detail,
        depends: Depends::All,
        columns,
        nest: None,
        legacy: false,
        compute,
    }
}

/// Every function served, v1.0 and beta alike.
pub static CATALOGUE: &[ReportDef] = &[
    ReportDef {
        name: "getOffice365ActivationsUserCounts",
        entity: "office365ActivationsUserCounts",
        params: Params::None,
        kind: Kind::Summary,
        depends: Depends::Directory,
        columns: ACTIVATIONS_USER_COUNTS,
        nest: None,
        legacy: false,
        compute: activations::user_counts_rows,
    },
    ReportDef {
        name: "getOffice365ActivationCounts",
        entity: "office365ActivationCounts",
        params: Params::None,
        kind: Kind::Summary,
        depends: Depends::Directory,
        columns: ACTIVATION_COUNTS,
        nest: None,
        legacy: false,
        compute: activations::counts_rows,
    },
    ReportDef {
        name: "getOffice365ActivationsUserDetail",
        entity: "office365ActivationsUserDetail",
        params: Params::None,
        kind: Kind::Detail,
        depends: Depends::Directory,
        columns: ACTIVATIONS_USER_DETAIL,
        nest: Some(Nest {
            from: 3,
            name: "userActivationCounts",
            entity: "userActivationCounts",
        }),
        legacy: false,
        compute: activations::user_detail_rows,
    },
    ReportDef {
        name: "getOffice365ServicesUserCounts",
        entity: "office365ServicesUserCounts",
        params: Params::Period,
        kind: Kind::Summary,
        depends: Depends::All,
        columns: SERVICES_USER_COUNTS,
        nest: None,
        legacy: false,
        compute: services::services_user_counts_rows,
    },
    ReportDef {
        name: "getOffice365ActiveUserCounts",
        entity: "office365ActiveUserCounts",
        params: Params::Period,
        kind: Kind::Summary,
        depends: Depends::All,
        columns: ACTIVE_USER_COUNTS,
        nest: None,
        legacy: false,
        compute: active_users::counts_rows,
    },
    ReportDef {
        name: "getOffice365ActiveUserDetail",
        entity: "office365ActiveUserDetail",
        params: Params::PeriodOrDate,
        kind: Kind::Detail,
        depends: Depends::All,
        columns: ACTIVE_USER_DETAIL,
        nest: None,
        legacy: false,
        compute: active_users::detail_rows,
    },
    ReportDef {
        name: "Office365ActivationsUserCounts",
        entity: "office365ActivationsUserCounts",
        params: Params::None,
        kind: Kind::Summary,
        depends: Depends::Directory,
        columns: ACTIVATIONS_USER_COUNTS.split_at(4).0,
        nest: None,
        legacy: true,
        compute: activations::legacy_user_counts_rows,
    },
    // Workload activity. The OData entity names of these beta JSON collections follow
    // Graph's beta schema as far as it could be checked (uncertain for the summaries: the
    // catalogue records property names, not type names).
    daily(
        "getEmailActivityCounts",
        "emailActivitySummary",
        EMAIL_ACTIVITY_COUNTS,
        usage::email_activity_counts,
    ),
    daily(
        "getEmailActivityUserCounts",
        "emailActivitySummary",
        EMAIL_ACTIVITY_COUNTS,
        usage::email_activity_user_counts,
    ),
    per_user(
        "getEmailActivityUserDetail",
        "emailActivityUserDetail",
        EMAIL_ACTIVITY_USER_DETAIL,
        usage::email_activity_user_detail,
    ),
    daily(
        "getOneDriveActivityFileCounts",
        "siteActivitySummary",
        FILE_COUNTS,
        usage::onedrive_activity_file_counts,
    ),
    daily(
        "getOneDriveActivityUserCounts",
        "oneDriveActivityUserCounts",
        FILE_COUNTS,
        usage::onedrive_activity_user_counts,
    ),
    per_user(
        "getOneDriveActivityUserDetail",
        "oneDriveActivityUserDetail",
        ONEDRIVE_ACTIVITY_USER_DETAIL,
        usage::onedrive_activity_user_detail,
    ),
    daily(
        "getSharePointActivityFileCounts",
        "siteActivitySummary",
        FILE_COUNTS,
        usage::sharepoint_activity_file_counts,
    ),
    daily(
        "getSharePointActivityPages",
        "sharePointActivityPages",
        SHAREPOINT_ACTIVITY_PAGES,
        usage::sharepoint_activity_pages,
    ),
    daily(
        "getSharePointActivityUserCounts",
        "sharePointActivityUserCounts",
        SHAREPOINT_ACTIVITY_USER_COUNTS,
        usage::sharepoint_activity_user_counts,
    ),
    per_user(
        "getSharePointActivityUserDetail",
        "sharePointActivityUserDetail",
        SHAREPOINT_ACTIVITY_USER_DETAIL,
        usage::sharepoint_activity_user_detail,
    ),
    // Mailbox usage: period only (Graph has no `date=` for these).
    ReportDef {
        name: "getMailboxUsageDetail",
        entity: "mailboxUsageDetail",
        params: Params::Period,
        kind: Kind::Detail,
        depends: Depends::All,
        columns: MAILBOX_USAGE_DETAIL,
        nest: None,
        legacy: false,
        compute: mailbox::detail,
    },
    daily(
        "getMailboxUsageMailboxCounts",
        "mailboxUsageMailboxCounts",
        MAILBOX_COUNTS,
        mailbox::mailbox_counts,
    ),
    daily(
        "getMailboxUsageQuotaStatusMailboxCounts",
        "mailboxUsageQuotaStatusMailboxCounts",
        QUOTA_STATUS_COUNTS,
        mailbox::quota_status_counts,
    ),
    daily(
        "getMailboxUsageStorage",
        "mailboxUsageStorage",
        MAILBOX_STORAGE,
        mailbox::storage,
    ),
    // OneDrive and SharePoint usage, per site.
    per_user(
        "getOneDriveUsageAccountDetail",
        "oneDriveUsageAccountDetail",
        ONEDRIVE_ACCOUNT_DETAIL,
        sites::onedrive_account_detail,
    ),
    daily(
        "getOneDriveUsageAccountCounts",
        "oneDriveUsageAccountCounts",
        SITE_TOTALS,
        sites::onedrive_account_counts,
    ),
    daily(
        "getOneDriveUsageFileCounts",
        "oneDriveUsageFileCounts",
        SITE_TOTALS,
        sites::onedrive_file_counts,
    ),
    daily(
        "getOneDriveUsageStorage",
        "oneDriveUsageStorage",
        SITE_STORAGE,
        sites::onedrive_storage,
    ),
    per_user(
        "getSharePointSiteUsageDetail",
        "sharePointSiteUsageDetail",
        SHAREPOINT_SITE_DETAIL,
        sites::sharepoint_site_detail,
    ),
    daily(
        "getSharePointSiteUsageFileCounts",
        "sharePointSiteUsageFileCounts",
        SITE_TOTALS,
        sites::sharepoint_file_counts,
    ),
    daily(
        "getSharePointSiteUsagePages",
        "sharePointSiteUsagePages",
        SITE_PAGES,
        sites::sharepoint_pages,
    ),
    daily(
        "getSharePointSiteUsageSiteCounts",
        "sharePointSiteUsageSiteCounts",
        SITE_TOTALS,
        sites::sharepoint_site_counts,
    ),
    daily(
        "getSharePointSiteUsageStorage",
        "sharePointSiteUsageStorage",
        SITE_STORAGE,
        sites::sharepoint_storage,
    ),
    // Email app usage.
    daily(
        "getEmailAppUsageAppsUserCounts",
        "emailAppUsageAppsUserCounts",
        &EMAIL_APPS_USER_COUNTS,
        email_apps::apps_user_counts,
    ),
    daily(
        "getEmailAppUsageUserCounts",
        "emailAppUsageUserCounts",
        &EMAIL_APP_USER_COUNTS,
        email_apps::user_counts,
    ),
    per_user(
        "getEmailAppUsageUserDetail",
        "emailAppUsageUserDetail",
        EMAIL_APP_USER_DETAIL,
        email_apps::user_detail,
    ),
    daily(
        "getEmailAppUsageVersionsUserCounts",
        "emailAppUsageVersionsUserCounts",
        EMAIL_VERSIONS_USER_COUNTS,
        email_apps::versions_user_counts,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_columns_start_with_the_refresh_date() {
        for (i, d) in CATALOGUE.iter().enumerate() {
            assert_eq!(ReportId::lookup(d.name), Some(ReportId(i as u16)));
            assert_eq!(d.columns[0].csv, "Report Refresh Date", "{}", d.name);
            let mut json: Vec<_> = d.columns.iter().map(|c| c.json).collect();
            json.sort_unstable();
            json.dedup();
            assert_eq!(json.len(), d.columns.len(), "{}", d.name);
        }
    }
}
