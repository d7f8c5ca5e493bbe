//! The small files, rendered with minijinja from `templates/pegasus/`: site and
//! transformation catalogs, properties, `plan.sh` and the software launchers.

use minijinja::{context, Value};

use crate::backend::templates::{TemplateSet, Templates};
use crate::backend::Output;
use crate::diag::Diagnostic;

use super::model::{Model, Prof, Soft, LOCAL};
use super::quote::{xml_escape, xml_url, yaml, yaml_url};

fn yaml_url_filter(s: &str) -> String {
    let mut o = String::new();
    yaml_url(s, &mut o);
    o
}

/// The templates of the Pegasus catalogs and scripts, with the quoting filters they use.
pub const TEMPLATES: TemplateSet = TemplateSet {
    templates: &[
        ("sites.yml", include_str!("../../../templates/pegasus/sites.yml.j2")),
        ("sites.xml", include_str!("../../../templates/pegasus/sites.xml.j2")),
        ("transformations.yml", include_str!("../../../templates/pegasus/transformations.yml.j2")),
        ("pegasus.properties", include_str!("../../../templates/pegasus/pegasus.properties.j2")),
        ("plan.sh", include_str!("../../../templates/pegasus/plan.sh.j2")),
        ("setup.sh", include_str!("../../../templates/pegasus/setup.sh.j2")),
        ("bpsc-post.sh", include_str!("../../../templates/pegasus/bpsc-post.sh.j2")),
    ],
    filters: &[("yaml", yaml), ("yaml_url", yaml_url_filter), ("xml", xml_escape), ("xml_url", xml_url)],
};

fn render(e: &Templates, name: &str, ctx: Value) -> Result<String, Diagnostic> {
    e.render(name, ctx)
}

fn write(out: &dyn Output, rel: &str, text: &str, executable: bool) -> Result<(), Diagnostic> {
    if executable {
        out.write_exec(rel, text.as_bytes())?;
    } else {
        out.write(rel, text.as_bytes())?;
    }
    Ok(())
}

/// A container image as Singularity/Apptainer takes it: `docker://` unless it names a
/// scheme or a local image file already.
pub fn image_url(image: &str) -> String {
    if image.contains("://") || image.starts_with('/') || image.ends_with(".sif") {
        image.to_string()
    } else {
        format!("docker://{image}")
    }
}

/// Profiles grouped by namespace, each entry (key, value) rendered as YAML.
fn by_namespace(ps: &[Prof]) -> Vec<Value> {
    let mut by_ns: Vec<(&str, Vec<(String, String)>)> = Vec::new();
    for p in ps {
        let mut v = String::new();
        super::yaml::prof_value(&p.val, &mut v);
        let e = (yaml(&p.key), v);
        match by_ns.iter_mut().find(|(n, _)| *n == p.ns) {
            Some((_, es)) => es.push(e),
            None => by_ns.push((p.ns, vec![e])),
        }
    }
    by_ns.into_iter().map(|(n, es)| context! { name => n, entries => es }).collect()
}

/// Write the catalogs, properties, `plan.sh`, the launchers and the POST script.
pub fn write_all(m: &Model, out: &dyn Output, yaml_flavour: bool) -> Result<(), Diagnostic> {
    let e = Templates::new(&TEMPLATES)?;
    let version = env!("CARGO_PKG_VERSION");
    let sites = Value::from_serialize(&m.sites);
    let exec_sites: Vec<&super::model::PSite> = m.sites.iter().filter(|s| s.name != LOCAL).collect();
    let default_dc = match exec_sites.first() {
        Some(f) if exec_sites.iter().all(|s| s.data_configuration == f.data_configuration) => f.data_configuration,
        _ => "sharedfs",
    };
    let site_names: Vec<&str> = m.sites.iter().map(|s| s.name.as_str()).collect();
    let mut categories: Vec<(String, i64)> = m.tx.iter().flatten().filter_map(|t| t.max_jobs.map(|n| (t.name.clone(), n))).collect();
    categories.sort();

    if yaml_flavour {
        write(out, "sites.yml", &render(&e, "sites.yml", context! { name => m.name, version, sites => sites.clone() })?, false)?;
        let tx: Vec<Value> = m
            .tx
            .iter()
            .flatten()
            .map(|t| {
                let site_list: Vec<Value> = t
                    .sites
                    .iter()
                    .map(|s| context! { name => yaml(s), profiles => by_namespace(t.site_profiles.get(s).map(|v| v.as_slice()).unwrap_or(&[])) })
                    .collect();
                let container = match t.soft {
                    Soft::Container(k) => Some(k),
                    _ => None,
                };
                let pfn = if container.is_some() {
                    format!("'file://${{BPSC_SUBMIT}}/{}'", t.launcher())
                } else {
                    format!("'${{BPSC_SUBMIT}}/{}'", t.launcher())
                };
                let metadata: Vec<(String, String)> = t.metadata().into_iter().map(|(k, v)| (k.to_string(), yaml(&v))).collect();
                context! { name => yaml(&t.name), metadata, profiles => by_namespace(&t.profiles), sites => site_list, container, pfn }
            })
            .collect();
        let containers: Vec<String> = m.containers.iter().map(|c| yaml(&image_url(c))).collect();
        write(
            out,
            "transformations.yml",
            &render(&e, "transformations.yml", context! { name => m.name, version, tx, containers })?,
            false,
        )?;
    } else {
        write(out, "sites.xml", &render(&e, "sites.xml", context! { name => m.name, version, sites => sites.clone() })?, false)?;
        write(out, "tc.txt", "# Text transformation catalog: empty, the DAX carries its executables inline (written by bpsc).\n", false)?;
        write(
            out,
            "replicas.rc",
            "# File replica catalog: the DAX carries its input files inline; Pegasus registers archived outputs here (written by bpsc).\n",
            false,
        )?;
    }
    // Cleanup: leaf cleanup (which `inplace` includes) removes the workflow's working
    // directory at the end (data-management.rst "Data Cleanup": "removes the directory
    // created by the create dir job"), and with it every `persist = scratch` dataset.
    let (cleanup, cleanup_why) = if m.keeps_scratch {
        (
            "none",
            "none: some datasets are `persist = scratch`, and Pegasus's leaf cleanup would remove\n#   the workflow's working directory with them (data-management.rst \"Data Cleanup\"); bpsc's own\n#   cleanup jobs still remove `discard` outputs after their last consumer.",
        )
    } else {
        ("inplace", "inplace: Pegasus removes the files it staged once no job needs them, and the working\n#   directory at the end; bpsc's own cleanup jobs remove `discard` outputs after their last consumer.")
    };
    write(
        out,
        "pegasus.properties",
        &render(
            &e,
            "pegasus.properties",
            context! { name => m.name, version, yaml => yaml_flavour, sites, default_data_configuration => default_dc, categories },
        )?,
        false,
    )?;
    write(
        out,
        "plan.sh",
        &render(
            &e,
            "plan.sh",
            context! { name => m.name, version, yaml => yaml_flavour, site_names => site_names.join(","), cleanup, cleanup_why },
        )?,
        true,
    )?;
    // One launcher per group Pegasus runs: a job's arguments are only its index.
    let campaign = crate::backend::comment_text(&m.ir.campaign);
    for t in m.tx.iter().flatten() {
        let setup = match &t.soft {
            Soft::Setup(s) => Some(s.as_str()),
            _ => None,
        };
        write(out, &t.launcher(), &render(&e, "setup.sh", context! { version, campaign, group => t.name, setup })?, true)?;
    }
    if m.post_script {
        write(
            out,
            "bpsc-post.sh",
            &render(
                &e,
                "bpsc-post.sh",
                context! { name => m.name, version, abort => super::model::POST_ABORT, no_retry => super::model::POST_NO_RETRY },
            )?,
            true,
        )?;
    }
    Ok(())
}
