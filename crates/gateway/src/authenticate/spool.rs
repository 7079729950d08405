//! Where a message waits while it is received and checked: in memory up to
//! `[auth] hold_memory_kb`, then in an unnamed temporary file (created with
//! `O_TMPFILE` where the filesystem allows, so nothing is left behind by a
//! crash) in the spool directory (the node's data directory, so not a
//! tmpfs).
//!
//! The spill bounds what a slow sender pins in memory for the length of its
//! DATA phase. The verifiers need the whole message at once, so the end of
//! data reads it back for the few milliseconds of the checks; the largest
//! such copy is bounded by the listener's `max_message_size`. File writes
//! are plain blocking writes into the page cache.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A message being held.
pub(crate) struct Spool {
    memory: Vec<u8>,
    file: Option<File>,
    /// Octets kept in memory before spilling.
    limit: usize,
    dir: Option<PathBuf>,
}

impl Spool {
    /// An empty spool spilling beyond `limit` octets into `dir` (the
    /// system's temporary directory when `None`).
    pub fn new(limit: usize, dir: Option<&Path>) -> Spool {
        Spool {
            memory: Vec::new(),
            file: None,
            limit,
            dir: dir.map(Path::to_path_buf),
        }
    }

    /// Appends `data`.
    ///
    /// # Errors
    /// When the temporary file cannot be created or written.
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        if let Some(file) = self.file.as_mut() {
            return file.write_all(data);
        }
        if self.memory.len() + data.len() <= self.limit {
            self.memory.extend_from_slice(data);
            return Ok(());
        }
        let mut file = match &self.dir {
            Some(dir) => tempfile::tempfile_in(dir)?,
            None => tempfile::tempfile()?,
        };
        file.write_all(&self.memory)?;
        file.write_all(data)?;
        self.memory = Vec::new();
        self.file = Some(file);
        Ok(())
    }

    /// True once the message went to a file.
    pub fn spilled(&self) -> bool {
        self.file.is_some()
    }

    /// The whole message.
    ///
    /// # Errors
    /// When the temporary file cannot be read back.
    pub fn into_bytes(self) -> std::io::Result<Vec<u8>> {
        let Some(mut file) = self.file else {
            return Ok(self.memory);
        };
        let len = file.seek(SeekFrom::End(0))?;
        file.seek(SeekFrom::Start(0))?;
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.read_to_end(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_messages_stay_in_memory() {
        let mut spool = Spool::new(10, None);
        spool.write(b"hello").unwrap();
        spool.write(b"world").unwrap();
        assert!(!spool.spilled());
        assert_eq!(spool.into_bytes().unwrap(), b"helloworld");
    }

    #[test]
    fn large_messages_spill_to_a_file_in_the_spool_dir_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(8, Some(dir.path()));
        spool.write(b"12345").unwrap();
        spool.write(b"6789").unwrap();
        assert!(spool.spilled());
        spool.write(b"abc").unwrap();
        // The file is unnamed: nothing is visible in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(spool.into_bytes().unwrap(), b"123456789abc");
    }

    #[test]
    fn a_missing_spool_dir_is_an_error_not_a_panic() {
        let mut spool = Spool::new(0, Some(Path::new("/nonexistent/mxgate-spool")));
        assert!(spool.write(b"x").is_err());
    }
}
