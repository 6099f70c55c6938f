//! Flags every example shares, parsed without a CLI crate.

use edgeseek::{DeviceOptions, LoadOptions};

/// Command-line arguments as `--name value` pairs and bare `--flag`s.
pub struct Args {
    items: Vec<String>,
}

impl Args {
    pub fn from_env() -> Args {
        Args {
            items: std::env::args().skip(1).collect(),
        }
    }

    /// The value after `--name`, removed from the list.
    pub fn value(&mut self, name: &str) -> Option<String> {
        let i = self.items.iter().position(|a| a == name)?;
        if i + 1 >= self.items.len() {
            fail(&format!("{name} needs a value"));
        }
        self.items.remove(i);
        Some(self.items.remove(i))
    }

    pub fn parsed<T: std::str::FromStr>(&mut self, name: &str) -> Option<T> {
        let v = self.value(name)?;
        Some(
            v.parse()
                .unwrap_or_else(|_| fail(&format!("{name}: cannot read '{v}'"))),
        )
    }

    pub fn flag(&mut self, name: &str) -> bool {
        match self.items.iter().position(|a| a == name) {
            Some(i) => {
                self.items.remove(i);
                true
            }
            None => false,
        }
    }

    /// Device and load flags: --adapter NAME, --no-f16, --downlevel, --ctx N,
    /// --max-batch N.
    pub fn load_options(&mut self) -> LoadOptions {
        let mut o = LoadOptions {
            device: DeviceOptions {
                adapter: self.value("--adapter"),
                no_f16: self.flag("--no-f16"),
                downlevel: self.flag("--downlevel"),
            },
            ..LoadOptions::default()
        };
        o.n_ctx = self.parsed("--ctx");
        if let Some(b) = self.parsed("--max-batch") {
            o.max_batch = b;
        }
        o
    }

    /// Fails on anything not consumed: a typo must not be silently ignored.
    pub fn finish(self) {
        if let Some(a) = self.items.first() {
            fail(&format!("unknown argument '{a}'"));
        }
    }
}

pub fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}
