//! Configuration errors: each names where (file, key or line) and what is valid.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found in a settings file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the setting came from, when it came from a file.
    pub file: Option<PathBuf>,
    /// Dotted path of the key (`pool[mta].server[mta1].weight`), or `line N`
    /// for syntax errors.
    pub key: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl ConfigError {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found in one validation pass (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Errors(pub Vec<ConfigError>);

impl Errors {
    /// Records a problem with `key`.
    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(key, message));
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets the file on every error that has none yet.
    pub fn in_file(mut self, file: &Path) -> Self {
        for e in &mut self.0 {
            e.file.get_or_insert_with(|| file.to_path_buf());
        }
        self
    }

    /// `Ok(value)` when nothing was recorded, else `Err(self)`.
    pub fn into_result<T>(self, value: T) -> Result<T, Errors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// Reads `path` and hands its text to `parse`; every error then names
    /// the file.
    pub fn load_file<T>(
        path: &Path,
        parse: impl FnOnce(&str) -> Result<T, Errors>,
    ) -> Result<T, Errors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let mut errors = Errors::default();
            errors.push("file", format!("cannot read: {e}"));
            errors.in_file(path)
        })?;
        parse(&text).map_err(|e| e.in_file(path))
    }

    /// Converts a TOML syntax or type error into one error with its line.
    pub fn from_toml(text: &str, err: &toml::de::Error) -> Self {
        let key = match err.span() {
            Some(span) => {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                format!("line {line}")
            }
            None => "file".to_string(),
        };
        let mut errors = Errors::default();
        errors.push(key, err.message().trim().to_string());
        errors
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}
