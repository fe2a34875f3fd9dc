//! `GET /{v1.0|beta}/$metadata`: a CSDL document generated from the report catalogue, so
//! code generators see every function reportroot serves (bound to `graph.reportRoot`,
//! composable, returning `Edm.Stream`) and the JSON entry types. Needs no token, as in Graph.

use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::reports::{CATALOGUE, ColType, Column, Params, ReportDef};

fn edm(ty: ColType) -> &'static str {
    match ty {
        ColType::Date => "Edm.Date",
        ColType::Int => "Edm.Int64",
        ColType::Text | ColType::Period => "Edm.String",
        ColType::Bool => "Edm.Boolean",
        ColType::List => "Collection(Edm.String)",
    }
}

fn complex_type(out: &mut String, name: &str, columns: &[Column], extra: Option<(&str, &str)>) {
    out.push_str(&format!("      <ComplexType Name=\"{name}\">\n"));
    for c in columns {
        out.push_str(&format!(
            "        <Property Name=\"{}\" Type=\"{}\" />\n",
            c.json,
            edm(c.ty)
        ));
    }
    if let Some((prop, ty)) = extra {
        out.push_str(&format!(
            "        <Property Name=\"{prop}\" Type=\"Collection(graph.{ty})\" />\n"
        ));
    }
    out.push_str("      </ComplexType>\n");
}

fn function(out: &mut String, def: &ReportDef, param: Option<(&str, &str)>) {
    out.push_str(&format!(
        "      <Function Name=\"{}\" IsBound=\"true\" IsComposable=\"true\">\n        <Parameter Name=\"bindingParameter\" Type=\"graph.reportRoot\" Nullable=\"false\" />\n",
        def.name
    ));
    if let Some((name, ty)) = param {
        out.push_str(&format!(
            "        <Parameter Name=\"{name}\" Type=\"{ty}\" Nullable=\"false\" />\n"
        ));
    }
    out.push_str(
        "        <ReturnType Type=\"Edm.Stream\" Nullable=\"false\" />\n      </Function>\n",
    );
}

/// The CSDL document.
pub fn csdl() -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<edmx:Edmx Version=\"4.0\" xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\">\n  <edmx:DataServices>\n    <Schema Namespace=\"microsoft.graph\" Alias=\"graph\" xmlns=\"http://docs.oasis-open.org/odata/ns/edm\">\n      <EntityType Name=\"entity\" Abstract=\"true\">\n        <Key><PropertyRef Name=\"id\" /></Key>\n        <Property Name=\"id\" Type=\"Edm.String\" Nullable=\"false\" />\n      </EntityType>\n      <EntityType Name=\"reportRoot\" BaseType=\"graph.entity\" />\n      <EntityType Name=\"adminReportSettings\" BaseType=\"graph.entity\">\n        <Property Name=\"displayConcealedNames\" Type=\"Edm.Boolean\" />\n      </EntityType>\n",
    );
    // Functions of one shape share an entity type: declare each once.
    let mut declared = std::collections::HashSet::new();
    for def in CATALOGUE
        .iter()
        .filter(|d| !d.legacy && declared.insert(d.entity))
    {
        match def.nest {
            Some(n) => {
                complex_type(&mut out, n.entity, &def.columns[n.from..], None);
                complex_type(
                    &mut out,
                    def.entity,
                    &def.columns[..n.from],
                    Some((n.name, n.entity)),
                );
            }
            None => complex_type(&mut out, def.entity, def.columns, None),
        }
    }
    for def in CATALOGUE.iter().filter(|d| !d.legacy) {
        match def.params {
            Params::None => function(&mut out, def, None),
            Params::Period => function(&mut out, def, Some(("period", "Edm.String"))),
            Params::PeriodOrDate => {
                function(&mut out, def, Some(("period", "Edm.String")));
                function(&mut out, def, Some(("date", "Edm.Date")));
            }
        }
    }
    out.push_str("      <EntityContainer Name=\"GraphService\">\n        <Singleton Name=\"reports\" Type=\"graph.reportRoot\" />\n      </EntityContainer>\n    </Schema>\n  </edmx:DataServices>\n</edmx:Edmx>\n");
    out
}

pub async fn get(uri: Uri) -> Result<Response, ApiError> {
    match uri.path().trim_start_matches('/').split('/').next() {
        Some("v1.0" | "beta") => {}
        _ => {
            return Err(ApiError::NotFound(format!(
                "Resource not found for the segment '{}'.",
                uri.path()
            )));
        }
    }
    let mut resp = csdl().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    Ok(resp)
}
