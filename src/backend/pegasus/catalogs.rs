//! The small files, rendered with minijinja from `templates/pegasus/`: site and
//! transformation catalogs, properties, `plan.sh` and the software launchers.

use std::io;
use std::path::Path;

use minijinja::{context, AutoEscape, Environment, Value};

use super::model::{Model, Soft, LOCAL};
use super::quote::{xml_escape, xml_url, yaml, yaml_url};

const SITES_YML: &str = include_str!("../../../templates/pegasus/sites.yml.j2");
const SITES_XML: &str = include_str!("../../../templates/pegasus/sites.xml.j2");
const TRANSFORMATIONS_YML: &str = include_str!("../../../templates/pegasus/transformations.yml.j2");
const PROPERTIES: &str = include_str!("../../../templates/pegasus/pegasus.properties.j2");
const PLAN_SH: &str = include_str!("../../../templates/pegasus/plan.sh.j2");
const SETUP_SH: &str = include_str!("../../../templates/pegasus/setup.sh.j2");

fn env() -> Result<Environment<'static>, minijinja::Error> {
    let mut e = Environment::new();
    e.set_auto_escape_callback(|_| AutoEscape::None);
    e.set_trim_blocks(true);
    e.set_lstrip_blocks(true);
    e.set_keep_trailing_newline(true);
    e.add_filter("yaml", |s: String| yaml(&s));
    e.add_filter("yaml_url", |s: String| {
        let mut o = String::new();
        yaml_url(&s, &mut o);
        o
    });
    e.add_filter("xml", |s: String| xml_escape(&s));
    e.add_filter("xml_url", |s: String| xml_url(&s));
    e.add_template("sites.yml", SITES_YML)?;
    e.add_template("sites.xml", SITES_XML)?;
    e.add_template("transformations.yml", TRANSFORMATIONS_YML)?;
    e.add_template("pegasus.properties", PROPERTIES)?;
    e.add_template("plan.sh", PLAN_SH)?;
    e.add_template("setup.sh", SETUP_SH)?;
    Ok(e)
}

fn render(e: &Environment, name: &str, ctx: Value) -> io::Result<String> {
    e.get_template(name).and_then(|t| t.render(ctx)).map_err(|err| io::Error::other(format!("template {name}: {err:#}")))
}

fn write(path: &Path, text: &str, executable: bool) -> io::Result<()> {
    std::fs::write(path, text)?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
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

/// Write the catalogs, properties, `plan.sh` and launchers of one flavour.
pub fn write_all(m: &Model, dir: &Path, yaml_flavour: bool) -> io::Result<()> {
    let e = env().map_err(|err| io::Error::other(format!("templates: {err:#}")))?;
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
        write(&dir.join("sites.yml"), &render(&e, "sites.yml", context! { name => m.name, version, sites => sites.clone() })?, false)?;
        let tx: Vec<Value> =
            m.tx.iter()
                .flatten()
                .map(|t| {
                    let site_list: Vec<Value> = t
                        .sites
                        .iter()
                        .map(|s| {
                            let mut by_ns: Vec<(String, Vec<(String, String)>)> = Vec::new();
                            for (ns, k, v) in t.site_profiles.get(s).map(|v| v.as_slice()).unwrap_or(&[]) {
                                match by_ns.iter_mut().find(|(n, _)| n == ns) {
                                    Some((_, e)) => e.push(((*k).to_string(), v.clone())),
                                    None => by_ns.push(((*ns).to_string(), vec![((*k).to_string(), v.clone())])),
                                }
                            }
                            let profiles: Vec<Value> = by_ns.into_iter().map(|(n, es)| context! { name => n, entries => es }).collect();
                            context! { name => s, profiles }
                        })
                        .collect();
                    let (launcher, container) = match t.soft {
                        Soft::Setup(k) => (Some(k), None),
                        Soft::Container(k) => (None, Some(k)),
                        Soft::None => (None, None),
                    };
                    context! { name => t.name, env => t.env, sites => site_list, launcher, container }
                })
                .collect();
        let containers: Vec<String> = m.containers.iter().map(|c| image_url(c)).collect();
        write(
            &dir.join("transformations.yml"),
            &render(&e, "transformations.yml", context! { name => m.name, version, tx, containers })?,
            false,
        )?;
    } else {
        write(&dir.join("sites.xml"), &render(&e, "sites.xml", context! { name => m.name, version, sites => sites.clone() })?, false)?;
        write(
            &dir.join("tc.txt"),
            "# Text transformation catalog: empty, the DAX carries its executables inline (written by bpsc).\n",
            false,
        )?;
        write(
            &dir.join("replicas.rc"),
            "# File replica catalog: the DAX carries its input files inline; Pegasus registers archived outputs here (written by bpsc).\n",
            false,
        )?;
    }
    write(
        &dir.join("pegasus.properties"),
        &render(
            &e,
            "pegasus.properties",
            context! { name => m.name, version, yaml => yaml_flavour, sites, default_data_configuration => default_dc, categories },
        )?,
        false,
    )?;
    write(
        &dir.join("plan.sh"),
        &render(&e, "plan.sh", context! { name => m.name, version, yaml => yaml_flavour, site_names => site_names.join(",") })?,
        true,
    )?;
    if !m.launchers.is_empty() {
        std::fs::create_dir_all(dir.join("launch"))?;
        for (k, setup) in m.launchers.iter().enumerate() {
            write(&dir.join("launch").join(format!("setup-{k}.sh")), &render(&e, "setup.sh", context! { version, setup })?, true)?;
        }
    }
    Ok(())
}
