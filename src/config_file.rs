//! `--config shoal.toml`: every `serve` flag as a top-level key, named as
//! its long flag (`s3-addr = "0.0.0.0:9000"`, `data-dir = ["/nvme0/shoal",
//! "/nvme1/shoal"]`), so an operator can keep a node's settings in version
//! control.
//!
//! Precedence, strongest first: a flag on the command line, its `SHOAL_*`
//! environment variable, the file, the flag's default. The file is folded
//! in by appending `--key=value` for each key that neither a flag nor the
//! environment set, then parsing once more: one parser and one set of
//! validators serve every source, so a value means the same wherever it is
//! written. A key that is no flag is refused by name, so a typo cannot
//! silently fall back to a default.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches};

use crate::flags::Cli;

/// The flag that names the file; it cannot be set from inside it.
const CONFIG_FLAG: &str = "config";

/// Parses the command line (`args`, program name first) with the config
/// file it names folded in. `Err` carries clap's error: `exit()` prints it
/// (help and `--version` included) and ends the process with clap's code.
pub fn parse(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let mut command = Cli::command();
    let matches = command.try_get_matches_from_mut(args.clone())?;
    let Some((name, sub_matches)) = matches.subcommand() else {
        return Cli::from_arg_matches(&matches);
    };
    let Some(path) = sub_matches.get_one::<PathBuf>(CONFIG_FLAG) else {
        return Cli::from_arg_matches(&matches);
    };
    let sub_command = command
        .find_subcommand(name)
        .expect("clap matched this subcommand");
    // `serve` owns the file: any key it lacks is a mistake. Other commands
    // (`preflight`) read the same file for the keys they share with it.
    let strict = name == "serve";
    let extra = file_arguments(path, sub_command, sub_matches, strict)
        .map_err(|message| command.error(clap::error::ErrorKind::InvalidValue, message))?;
    let mut with_file = args;
    with_file.extend(extra.into_iter().map(OsString::from));
    Cli::command()
        .try_get_matches_from(with_file)
        .map_err(|e| {
            let message = format!("config file {}: {}", path.display(), e.kind());
            let detail = e.render().to_string();
            Cli::command().error(e.kind(), format!("{message}\n{detail}"))
        })
        .and_then(|matches| Cli::from_arg_matches(&matches))
}

/// The `--key=value` arguments the file at `path` adds: one per key (one
/// per item of an array) whose flag the command line and environment left
/// unset. A key `command` lacks is an error when `strict`, else skipped.
fn file_arguments(
    path: &Path,
    command: &clap::Command,
    given: &clap::ArgMatches,
    strict: bool,
) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading config file {}: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("config file {}: {e}", path.display()))?;
    let mut arguments = Vec::new();
    let mut unknown = Vec::new();
    for (key, value) in &table {
        let Some(arg) = command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(key.as_str()) && key != "help")
        else {
            if strict {
                unknown.push(key.clone());
            }
            continue;
        };
        if key == CONFIG_FLAG {
            return Err(format!(
                "config file {}: `config` cannot name another file",
                path.display()
            ));
        }
        let set_elsewhere = matches!(
            given.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if set_elsewhere {
            continue;
        }
        let items = match value {
            toml::Value::Array(items) if matches!(arg.get_action(), ArgAction::Append) => {
                items.iter().collect()
            }
            toml::Value::Array(_) => {
                return Err(format!(
                    "config file {}: `{key}` takes one value, not a list",
                    path.display()
                ))
            }
            one => vec![one],
        };
        for item in items {
            let text = scalar_text(item).ok_or_else(|| {
                format!(
                    "config file {}: `{key}` must be a string, number or boolean",
                    path.display()
                )
            })?;
            match (arg.get_action(), text.as_str()) {
                (ArgAction::SetTrue, "true") => arguments.push(format!("--{key}")),
                (ArgAction::SetTrue, "false") => {}
                (ArgAction::SetTrue, _) => {
                    return Err(format!(
                        "config file {}: `{key}` is true or false",
                        path.display()
                    ))
                }
                _ => arguments.push(format!("--{key}={text}")),
            }
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "config file {}: unknown keys {}; keys are the long flags of `shoal serve` without \
             the dashes (see `shoal serve --help` or docs/shoal.example.toml)",
            path.display(),
            unknown.join(", ")
        ));
    }
    Ok(arguments)
}

/// A TOML scalar as the text a flag would be given; `None` for tables and
/// arrays nested in arrays.
fn scalar_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(x) => Some(x.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::{Command, ServeFlags};

    fn serve(file: &str, args: &[&str]) -> Result<ServeFlags, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shoal.toml");
        std::fs::write(&path, file).unwrap();
        let mut argv: Vec<OsString> = vec!["shoal".into(), "serve".into()];
        argv.push("--config".into());
        argv.push(path.clone().into());
        argv.extend(args.iter().map(OsString::from));
        match parse(argv) {
            Ok(Cli {
                command: Command::Serve(flags),
            }) => Ok(flags),
            Ok(_) => panic!("a serve command"),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn keys_set_flags_and_flags_override_keys() {
        let file = r#"
            s3-addr = "127.0.0.1:9100"
            admin-addr = "127.0.0.1:9101"
            data-dir = ["/nvme0/shoal", "/nvme1/shoal"]
            put-budget = "1GiB"
            shards = 4
            access-log = true
            blob-offload = false
        "#;
        let flags = serve(file, &[]).unwrap();
        assert_eq!(flags.s3_addr.port(), 9100);
        assert_eq!(flags.admin_addr.port(), 9101);
        assert_eq!(
            flags.data_dir,
            vec![PathBuf::from("/nvme0/shoal"), PathBuf::from("/nvme1/shoal")]
        );
        assert_eq!(flags.put_budget, Some(1 << 30));
        assert_eq!(flags.shards, Some(4));
        assert!(flags.access_log);
        assert!(!flags.blob_offload);

        let flags = serve(file, &["--s3-addr", "127.0.0.1:9200", "--data-dir", "/d"]).unwrap();
        assert_eq!(flags.s3_addr.port(), 9200, "the flag wins");
        assert_eq!(
            flags.admin_addr.port(),
            9101,
            "the file still sets the rest"
        );
        assert_eq!(flags.data_dir, vec![PathBuf::from("/d")]);
    }

    #[test]
    fn a_false_switch_leaves_the_default() {
        let flags = serve("access-log = false\ninit = false\n", &[]).unwrap();
        assert!(!flags.access_log);
        assert!(!flags.init);
    }

    #[test]
    fn mistakes_are_refused_by_name() {
        let error = serve("s3-adr = \"127.0.0.1:9000\"\n", &[]).unwrap_err();
        assert!(error.contains("unknown keys s3-adr"), "{error}");

        let error = serve("s3-addr = \"nowhere\"\n", &[]).unwrap_err();
        assert!(error.contains("config file"), "{error}");
        assert!(error.contains("nowhere"), "{error}");

        let error = serve("region = [\"a\", \"b\"]\n", &[]).unwrap_err();
        assert!(error.contains("takes one value"), "{error}");

        let error = serve("config = \"other.toml\"\n", &[]).unwrap_err();
        assert!(error.contains("cannot name another file"), "{error}");

        let error = serve("[s3]\naddr = 1\n", &[]).unwrap_err();
        assert!(error.contains("unknown keys s3"), "{error}");

        let error = serve("s3-addr = \n", &[]).unwrap_err();
        assert!(error.contains("config file"), "{error}");
    }

    #[test]
    fn preflight_reads_the_keys_it_shares_with_serve() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shoal.toml");
        std::fs::write(
            &path,
            "data-dir = [\"/nvme0/shoal\"]\ns3-addr = \"0.0.0.0:9000\"\ndisk-reserve = \"1GiB\"\n",
        )
        .unwrap();
        let argv: Vec<OsString> = vec![
            "shoal".into(),
            "preflight".into(),
            "--config".into(),
            path.into(),
        ];
        let Cli {
            command: Command::Preflight(flags),
        } = parse(argv).unwrap()
        else {
            panic!("a preflight command");
        };
        assert_eq!(flags.data_dir, vec![PathBuf::from("/nvme0/shoal")]);
        assert_eq!(flags.reserve_bytes(), 1 << 30);
    }

    #[test]
    fn a_missing_file_is_named() {
        let argv: Vec<OsString> = ["shoal", "serve", "--config", "/nonexistent/shoal.toml"]
            .iter()
            .map(OsString::from)
            .collect();
        let error = parse(argv).unwrap_err().to_string();
        assert!(error.contains("/nonexistent/shoal.toml"), "{error}");
    }

    /// `docs/shoal.example.toml` names every key (commented out or not),
    /// and every key it names is a flag: the example cannot fall behind.
    #[test]
    fn the_example_file_names_every_flag_and_parses() {
        let example = include_str!("../docs/shoal.example.toml");
        let named: std::collections::BTreeSet<String> = example
            .lines()
            .map(|line| line.trim_start_matches('#').trim())
            .filter_map(|line| line.split_once(" = ").map(|(key, _)| key.to_string()))
            .filter(|key| {
                key.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
            .collect();
        let cli = Cli::command();
        let serve_command = cli.find_subcommand("serve").unwrap();
        let flags: std::collections::BTreeSet<String> = serve_command
            .get_arguments()
            // Hidden flags are test knobs, not an operator's settings.
            .filter(|arg| !arg.is_hide_set())
            .filter_map(|arg| arg.get_long())
            .filter(|long| !matches!(*long, "help" | "config"))
            .map(str::to_string)
            .collect();
        let missing: Vec<_> = flags.difference(&named).collect();
        let unknown: Vec<_> = named.difference(&flags).collect();
        assert!(
            missing.is_empty(),
            "keys missing from the example: {missing:?}"
        );
        assert!(
            unknown.is_empty(),
            "the example names no such flags: {unknown:?}"
        );
        // Uncommented, every line the example shows is a valid setting
        // (but `cores`, which names CPUs this machine may lack).
        let uncommented: String = example
            .lines()
            .map(|line| line.strip_prefix("# ").unwrap_or(line))
            .filter(|line| {
                line.split_once(" = ")
                    .is_some_and(|(key, _)| named.contains(key) && key != "cores")
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let flags = serve(&uncommented, &[]).expect("the uncommented example parses");
        flags.validate().expect("the uncommented example validates");
    }
}
