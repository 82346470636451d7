//! `fintors man [--dir DIR]`: the manual pages, generated from the command line's own definition
//! (clap_mangen), so they say what `--help` says: fintors(1), and with `--dir` one page per
//! subcommand too (fintors-use(1), fintors-network(1), ...), which `make install` puts under
//! `share/man/man1`.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::args::Cli;

/// fintors(1) to stdout, or every page into `dir`: what was written, for stdout.
pub fn man(dir: Option<&Path>) -> std::io::Result<String> {
    let command = Cli::command();
    match dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page)?;
            std::io::stdout().write_all(&page)?;
            Ok(String::new())
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(command, dir)?;
            let mut pages: Vec<String> = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("fintors") && name.ends_with(".1"))
                .collect();
            pages.sort();
            Ok(format!(
                "wrote {} manual pages to {}\n",
                pages.len(),
                dir.display()
            ))
        }
    }
}
