//! The on-disk cache of FAQ text embeddings, keyed by content: sha256(model digest, query or
//! passage, text). A restart with an unchanged knowledge base finds every vector here and
//! embeds nothing; a changed FAQ misses only for the texts that changed. The file is
//! rewritten whole by rename (never seen half-written) and keeps only the texts in use.
//!
//! Layout (little-endian): `TDKVEC01`, the model's sha256 (64 ASCII hex), dim `u32`,
//! count `u64`, then per entry a 16-byte key and `dim` `f32`s.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::engine::{DIM, Kind};
use super::model_file::MODEL_SHA256;

const MAGIC: &[u8; 8] = b"TDKVEC01";

/// The cache key of one text.
pub type TextKey = [u8; 16];

/// The key of `text` embedded as `kind` by the pinned model.
pub fn text_key(kind: Kind, text: &str) -> TextKey {
    let mut h = Sha256::new();
    h.update(MODEL_SHA256.as_bytes());
    h.update(match kind {
        Kind::Query => b"q",
        Kind::Passage => b"p",
    });
    h.update(text.as_bytes());
    let digest = h.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// Vectors by text key, with the file they persist to.
pub struct VectorCache {
    path: PathBuf,
    entries: HashMap<TextKey, Box<[f32]>>,
    /// Entries added since the last save.
    dirty: usize,
}

impl VectorCache {
    /// The cache at `path`: what the file holds, or empty when it is absent, of another
    /// model or damaged (a damaged cache costs a recomputation, never an error).
    pub fn open(path: &Path) -> VectorCache {
        let entries = match read(path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "FAQ vector cache unreadable; recomputing");
                HashMap::new()
            }
        };
        VectorCache {
            path: path.to_path_buf(),
            entries,
            dirty: 0,
        }
    }

    pub fn get(&self, key: &TextKey) -> Option<&[f32]> {
        self.entries.get(key).map(|v| &v[..])
    }

    pub fn insert(&mut self, key: TextKey, vector: Vec<f32>) {
        if vector.len() == DIM {
            self.entries.insert(key, vector.into_boxed_slice());
            self.dirty += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries added since the last [`save`](Self::save).
    pub fn unsaved(&self) -> usize {
        self.dirty
    }

    /// Drops the entries not in `keep`, then writes the file (temporary file + rename).
    pub fn save(&mut self, keep: impl Fn(&TextKey) -> bool) -> std::io::Result<()> {
        self.entries.retain(|k, _| keep(k));
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension(format!(
            "{}.{}.tmp",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let written = (|| {
            let mut out = BufWriter::new(std::fs::File::create(&tmp)?);
            out.write_all(MAGIC)?;
            out.write_all(MODEL_SHA256.as_bytes())?;
            out.write_all(&(DIM as u32).to_le_bytes())?;
            out.write_all(&(self.entries.len() as u64).to_le_bytes())?;
            for (key, vector) in &self.entries {
                out.write_all(key)?;
                for x in vector.iter() {
                    out.write_all(&x.to_le_bytes())?;
                }
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        self.dirty = 0;
        Ok(())
    }
}

fn read(path: &Path) -> std::io::Result<HashMap<TextKey, Box<[f32]>>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(bad("not a vector cache"));
    }
    let mut model = [0u8; 64];
    r.read_exact(&mut model)?;
    if model != *MODEL_SHA256.as_bytes() {
        return Err(bad("vectors of another model"));
    }
    let mut word = [0u8; 4];
    r.read_exact(&mut word)?;
    if u32::from_le_bytes(word) as usize != DIM {
        return Err(bad("vectors of another size"));
    }
    let mut count = [0u8; 8];
    r.read_exact(&mut count)?;
    let count = u64::from_le_bytes(count);
    let entry = 16 + 4 * DIM as u64;
    if count.saturating_mul(entry) > size {
        return Err(bad("truncated"));
    }
    let mut entries = HashMap::with_capacity(count as usize);
    let mut raw = vec![0u8; 4 * DIM];
    for _ in 0..count {
        let mut key = [0u8; 16];
        r.read_exact(&mut key)?;
        r.read_exact(&mut raw)?;
        let v: Box<[f32]> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        entries.insert(key, v);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_reloads_forgets_unused_and_survives_damage() {
        let dir = std::env::temp_dir().join(format!("taxdesk-vec-{}", uuid::Uuid::new_v4()));
        let path = dir.join("kb-vectors.bin");
        let mut cache = VectorCache::open(&path);
        assert!(cache.is_empty());
        let (a, b) = (text_key(Kind::Query, "甲"), text_key(Kind::Passage, "甲"));
        assert_ne!(a, b, "the prefix is part of the key");
        cache.insert(a, vec![0.5; DIM]);
        cache.insert(b, vec![-0.25; DIM]);
        cache.insert(text_key(Kind::Query, "bad"), vec![1.0; 3]);
        assert_eq!(cache.len(), 2);
        cache.save(|_| true).unwrap();
        assert_eq!(cache.unsaved(), 0);

        let mut again = VectorCache::open(&path);
        assert_eq!(again.len(), 2);
        assert_eq!(again.get(&b).unwrap()[7], -0.25);
        again.save(|k| *k == a).unwrap();
        let last = VectorCache::open(&path);
        assert_eq!(last.len(), 1);
        assert!(last.get(&a).is_some() && last.get(&b).is_none());

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        assert!(
            VectorCache::open(&path).is_empty(),
            "truncated file ignored"
        );
        std::fs::write(&path, b"garbage").unwrap();
        assert!(VectorCache::open(&path).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
