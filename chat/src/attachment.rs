//! Attachments (附件): what a chat participant uploads, checked and stored.
//!
//! - [`sniff`] decides the type from the bytes, never from the name or the client's
//!   `Content-Type`: images (png, jpeg, gif, webp) and files (pdf, Word/Excel/PowerPoint old
//!   and new, OpenDocument, OFD e-invoices, zip, UTF-8 text). A declared extension that names
//!   another type, an executable (PE, ELF, Mach-O, Java/Dalvik, scripts, installers), an
//!   archive that carries one, or a macro-enabled document is refused.
//! - [`safe_file_name`] keeps the name a person gave (Chinese included) without its path,
//!   control or bidi characters, bounded in length and ending in the right extension.
//! - Bytes are stored once per content under `<data_dir>/attachments/<sha256[0..2]>/<sha256>`,
//!   written to a temporary file and renamed into place, so a reader never sees half a file.
//! - [`save`] checks and stores an upload and writes its row; [`open_for`] lets only the
//!   uploader, the participants of its chat session and admins read it — anyone else is told
//!   it does not exist.

use std::path::{Path, PathBuf};

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};
use sha2::{Digest, Sha256};
use taxdesk_workflow::{Actor, Role};

use crate::entities::{attachment, session};

/// The default size limit of one attachment: 20 MiB.
pub const DEFAULT_LIMIT: usize = 20 * 1024 * 1024;

/// Longest stem of a stored file name, in characters and in UTF-8 bytes (a name must still
/// fit a file system's 255-byte limit once a browser saves it).
const MAX_STEM_CHARS: usize = 100;
const MAX_STEM_BYTES: usize = 180;

/// Where attachments live and how big one may be; the transport attaches it to requests.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub limit: usize,
}

/// How a front end shows an attachment: an image in the conversation, or a file to download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    File,
}

impl Kind {
    /// The kind of a stored attachment, from the content type [`sniff`] gave it.
    pub fn of_content_type(content_type: &str) -> Kind {
        if IMAGES.iter().any(|t| t.content_type == content_type) {
            Kind::Image
        } else {
            Kind::File
        }
    }
}

/// What the bytes of an upload are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    /// The media type the attachment is served with.
    pub content_type: &'static str,
    pub kind: Kind,
    /// The extension its stored name ends with (lower case, without the dot): the declared
    /// one when it fits the type (`jpeg` stays `jpeg`), else the type's usual one.
    pub extension: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    /// No bytes at all.
    #[error("the file is empty")]
    Empty,
    #[error("the file is {size} bytes, over the {limit} byte limit")]
    TooLarge { size: usize, limit: usize },
    /// The type is not accepted, does not match the name, or is executable.
    #[error("unsupported media type: {en}")]
    UnsupportedMediaType { zh: String, en: String },
    /// The attachment or chat session does not exist, or the actor may not see it.
    #[error("not found: {what} {id}")]
    NotFound { what: &'static str, id: String },
    #[error("attachment storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

fn unsupported(zh: impl Into<String>, en: impl Into<String>) -> AttachmentError {
    AttachmentError::UnsupportedMediaType {
        zh: zh.into(),
        en: en.into(),
    }
}

/// One accepted type. The first extension is the usual one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Type {
    content_type: &'static str,
    kind: Kind,
    extensions: &'static [&'static str],
    /// Named in messages.
    label: &'static str,
}

macro_rules! types {
    ($($name:ident = $ct:literal, $kind:ident, [$($ext:literal),+], $label:literal;)*) => {
        $(const $name: Type = Type {
            content_type: $ct,
            kind: Kind::$kind,
            extensions: &[$($ext),+],
            label: $label,
        };)*
        const ALL: &[&Type] = &[$(&$name),*];
    };
}

types! {
    PNG = "image/png", Image, ["png"], "PNG";
    JPEG = "image/jpeg", Image, ["jpg", "jpeg", "jpe", "jfif"], "JPEG";
    GIF = "image/gif", Image, ["gif"], "GIF";
    WEBP = "image/webp", Image, ["webp"], "WebP";
    PDF = "application/pdf", File, ["pdf"], "PDF";
    OFD = "application/ofd", File, ["ofd"], "OFD";
    DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document", File, ["docx"], "Word";
    XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", File, ["xlsx"], "Excel";
    PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation", File, ["pptx"], "PowerPoint";
    DOC = "application/msword", File, ["doc", "wps"], "Word 97-2003";
    XLS = "application/vnd.ms-excel", File, ["xls", "et"], "Excel 97-2003";
    PPT = "application/vnd.ms-powerpoint", File, ["ppt", "dps"], "PowerPoint 97-2003";
    ODT = "application/vnd.oasis.opendocument.text", File, ["odt"], "OpenDocument";
    ODS = "application/vnd.oasis.opendocument.spreadsheet", File, ["ods"], "OpenDocument";
    ODP = "application/vnd.oasis.opendocument.presentation", File, ["odp"], "OpenDocument";
    ZIP = "application/zip", File, ["zip"], "ZIP";
    TXT = "text/plain; charset=utf-8", File, ["txt", "text", "log"], "text";
    CSV = "text/csv; charset=utf-8", File, ["csv"], "CSV";
}

const IMAGES: &[&Type] = &[&PNG, &JPEG, &GIF, &WEBP];

/// Extensions of programs, scripts, installers, disk images and macro-enabled documents:
/// refused whatever the bytes, and inside an archive.
const EXECUTABLE_EXTENSIONS: &[&str] = &[
    "exe", "dll", "com", "scr", "pif", "cpl", "sys", "drv", "ocx", "msi", "msp", "msix", "appx",
    "bat", "cmd", "sh", "bash", "zsh", "ksh", "csh", "fish", "command", "ps1", "psm1", "psd1",
    "vbs", "vbe", "js", "jse", "mjs", "cjs", "wsf", "wsh", "ws", "hta", "jar", "class", "apk",
    "xapk", "aab", "dex", "ipa", "app", "dmg", "pkg", "deb", "rpm", "run", "bin", "elf", "so",
    "dylib", "ko", "lnk", "url", "reg", "inf", "scf", "gadget", "msc", "chm", "py", "pyw", "pyc",
    "pl", "rb", "php", "asp", "aspx", "jsp", "cgi", "wasm", "swf", "iso", "img", "vhd", "vhdx",
    "docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppam", "ppsm", "sldm",
];

/// Extensions of other well-known types: a file named so is not what it claims to be when
/// its bytes are one of ours.
const OTHER_EXTENSIONS: &[&str] = &[
    "bmp", "tif", "tiff", "svg", "svgz", "ico", "heic", "heif", "avif", "jxl", "psd", "raw",
    "html", "htm", "xhtml", "shtml", "mht", "mhtml", "xml", "json", "rtf", "md", "rar", "7z", "gz",
    "tgz", "tar", "bz2", "xz", "zst", "cab", "mp3", "mp4", "m4a", "m4v", "aac", "wav", "avi",
    "mov", "mkv", "webm", "flac", "ogg", "wmv", "flv", "epub", "eml", "msg", "key", "numbers",
    "pages", "vsdx", "dot", "dotx", "xlt", "xltx", "pot", "potx", "pps", "ppsx",
];

fn is_executable_extension(ext: &str) -> bool {
    EXECUTABLE_EXTENSIONS.contains(&ext)
}

fn is_known_extension(ext: &str) -> bool {
    OTHER_EXTENSIONS.contains(&ext) || ALL.iter().any(|t| t.extensions.contains(&ext))
}

/// A name's extension, lower case, when its last dot is followed by 1–10 ASCII letters or
/// digits (`报表.2025年` has none: that is part of the name).
fn split_extension(name: &str) -> (&str, Option<String>) {
    match name.rsplit_once('.') {
        Some((stem, ext))
            if (1..=10).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            (stem, Some(ext.to_ascii_lowercase()))
        }
        _ => (name, None),
    }
}

/// Decides what `bytes` are, and whether the name they came with fits.
pub fn sniff(bytes: &[u8], declared_file_name: &str) -> Result<Sniffed, AttachmentError> {
    if bytes.is_empty() {
        return Err(AttachmentError::Empty);
    }
    let declared = declared_extension(declared_file_name)?;
    let candidate = detect_head(bytes, true)?;
    let ty = resolve(
        candidate,
        &mut std::io::Cursor::new(bytes),
        bytes,
        is_text(bytes),
        declared.as_deref(),
    )?;
    named(ty, declared)
}

/// The extension of a declared name (lower case), refused when it names a program.
pub(crate) fn declared_extension(
    declared_file_name: &str,
) -> Result<Option<String>, AttachmentError> {
    let base = clean_name(declared_file_name);
    let declared = split_extension(&base).1;
    if let Some(ext) = &declared
        && is_executable_extension(ext)
    {
        return Err(unsupported(
            format!("不允许上传可执行文件或脚本（.{ext}）"),
            format!("executables and scripts (.{ext}) may not be uploaded"),
        ));
    }
    Ok(declared)
}

/// The sniffed type with the extension its stored name gets: the declared one when it fits
/// the type, else the type's usual one; a declared extension of another known type is refused.
pub(crate) fn named(
    ty: &'static Type,
    declared: Option<String>,
) -> Result<Sniffed, AttachmentError> {
    let extension = match declared {
        Some(ext) => match ty.extensions.iter().find(|e| **e == ext) {
            Some(e) => e,
            None if is_known_extension(&ext) => {
                return Err(unsupported(
                    format!("文件名为 .{ext}，但内容是 {} 文件，二者不符", ty.label),
                    format!(
                        "the name says .{ext} but the content is a {} file",
                        ty.label
                    ),
                ));
            }
            // Not an extension we know: it stays part of the name, the right one is added.
            None => ty.extensions[0],
        },
        None => ty.extensions[0],
    };
    Ok(Sniffed {
        content_type: ty.content_type,
        kind: ty.kind,
        extension,
    })
}

fn executable_refusal(what: &str) -> AttachmentError {
    unsupported(
        format!("不允许上传可执行文件（{what}）"),
        format!("executables may not be uploaded ({what})"),
    )
}

/// What the first bytes of an upload say, before the rest is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Candidate {
    /// Decided by the first bytes alone (images, PDF).
    Known(&'static Type),
    /// An OLE compound file: its root entry's class says which Office type, if any.
    Ole,
    /// A zip container: its central directory (at the end) says what it holds.
    Zip,
    /// Text so far: it stays text if every byte is UTF-8 without NULs.
    Text,
}

/// How many first bytes decide the [`Candidate`] (magic numbers, the PE header pointer,
/// an OpenDocument's `mimetype` entry all lie well inside).
pub(crate) const HEAD_LEN: usize = 64 * 1024;

/// The candidate type of an upload from its first bytes (`whole` when that is all of it):
/// executables and unknown types are refused here, before the rest is read.
pub(crate) fn detect_head(head: &[u8], whole: bool) -> Result<Candidate, AttachmentError> {
    let text = looks_like_text(head, whole);
    if let Some(what) = executable(head, text) {
        return Err(executable_refusal(what));
    }
    let image = if infer::image::is_png(head) {
        Some(&PNG)
    } else if infer::image::is_jpeg(head) {
        Some(&JPEG)
    } else if infer::image::is_gif(head) {
        Some(&GIF)
    } else if infer::image::is_webp(head) {
        Some(&WEBP)
    } else {
        None
    };
    if let Some(ty) = image {
        return Ok(Candidate::Known(ty));
    }
    // Only a header at the start: readers also find one further in, but then any text or
    // archive that mentions "%PDF" would pass for one.
    if head.starts_with(b"%PDF-") {
        return Ok(Candidate::Known(&PDF));
    }
    // OLE compound files: legacy Office documents, and also MSI installers.
    if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Ok(Candidate::Ole);
    }
    if infer::archive::is_zip(head) {
        return Ok(Candidate::Zip);
    }
    if text {
        return Ok(Candidate::Text);
    }
    Err(unsupported_type())
}

fn unsupported_type() -> AttachmentError {
    unsupported(
        "不支持的文件类型：仅支持 PNG、JPEG、GIF、WebP 图片，PDF、OFD、Office 文档、ZIP 与 UTF-8 文本",
        "unsupported file type: PNG, JPEG, GIF and WebP images, PDF, OFD, Office documents, ZIP and UTF-8 text are accepted",
    )
}

/// The type of a whole upload: its candidate, settled by reading what it needs of `content`
/// (an OLE root entry, a zip directory) and by whether all of it was `text`.
pub(crate) fn resolve<R: std::io::Read + std::io::Seek>(
    candidate: Candidate,
    content: &mut R,
    head: &[u8],
    text: bool,
    declared: Option<&str>,
) -> Result<&'static Type, AttachmentError> {
    match candidate {
        Candidate::Known(ty) => Ok(ty),
        Candidate::Ole => ole_type(content),
        Candidate::Zip => zip_type(zip_entries(content), head),
        Candidate::Text if text => Ok(if declared == Some("csv") { &CSV } else { &TXT }),
        Candidate::Text => Err(unsupported_type()),
    }
}

/// The Office type of an OLE compound file, from its root entry's class id (as `infer`
/// reads it); anything else (an MSI installer, say) is refused.
fn ole_type<R: std::io::Read + std::io::Seek>(
    content: &mut R,
) -> Result<&'static Type, AttachmentError> {
    let class = cfb::CompoundFile::open(content)
        .ok()
        .map(|f| f.root_entry().clsid().to_string());
    match class.as_deref() {
        Some("00020906-0000-0000-c000-000000000046") => Ok(&DOC),
        Some("00020810-0000-0000-c000-000000000046" | "00020820-0000-0000-c000-000000000046") => {
            Ok(&XLS)
        }
        Some("64818d10-4f9b-11cf-86ea-00aa00b929e8") => Ok(&PPT),
        _ => Err(unsupported(
            "无法识别的复合文档（可能是安装包），不允许上传",
            "an unrecognised OLE compound file (possibly an installer) may not be uploaded",
        )),
    }
}

/// Names the kind of executable the bytes are, if they are one (`text`: whether they read
/// as text, which tells a PE from a text file that happens to start with "MZ").
fn executable(bytes: &[u8], text: bool) -> Option<&'static str> {
    if is_pe(bytes, text) {
        return Some("Windows PE");
    }
    if infer::app::is_elf(bytes) {
        return Some("ELF");
    }
    if infer::app::is_mach(bytes) {
        return Some("Mach-O");
    }
    if infer::app::is_java(bytes) {
        return Some("Java class");
    }
    if infer::app::is_dex(bytes) || infer::app::is_dey(bytes) {
        return Some("Dalvik");
    }
    if infer::app::is_wasm(bytes) {
        return Some("WebAssembly");
    }
    if strip_bom(bytes).starts_with(b"#!") {
        return Some("script");
    }
    None
}

/// `MZ` with a PE header where the DOS header points, or `MZ` on bytes that are not text
/// (so a text file that happens to start with "MZ" is still text).
fn is_pe(bytes: &[u8], text: bool) -> bool {
    if !bytes.starts_with(b"MZ") {
        return false;
    }
    let pe_at = bytes
        .get(0x3C..0x40)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let has_pe = pe_at.is_some_and(|at| bytes.get(at..at.saturating_add(4)) == Some(b"PE\0\0"));
    has_pe || !text
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// UTF-8 without NULs.
fn is_text(bytes: &[u8]) -> bool {
    !bytes.contains(&0) && std::str::from_utf8(strip_bom(bytes)).is_ok()
}

/// [`is_text`] of the first bytes of something longer: a character cut at the end is fine.
fn looks_like_text(head: &[u8], whole: bool) -> bool {
    if whole {
        return is_text(head);
    }
    !head.contains(&0)
        && match std::str::from_utf8(strip_bom(head)) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        }
}

/// Whether a stream of chunks is UTF-8 without NULs, without holding it.
#[derive(Debug, Default)]
pub(crate) struct TextCheck {
    /// The start of a character cut by the end of the last chunk.
    pending: Vec<u8>,
    failed: bool,
}

impl TextCheck {
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if self.failed {
            return;
        }
        if chunk.contains(&0) {
            self.failed = true;
            return;
        }
        let mut joined = std::mem::take(&mut self.pending);
        joined.extend_from_slice(chunk);
        match std::str::from_utf8(&joined) {
            Ok(_) => {}
            Err(e) if e.error_len().is_none() => {
                self.pending = joined[e.valid_up_to()..].to_vec();
            }
            Err(_) => self.failed = true,
        }
    }

    pub(crate) fn is_text(&self) -> bool {
        !self.failed && self.pending.is_empty()
    }
}

/// The type of a zip container, from the names in its central directory (`None`: it could
/// not be read) and its first bytes (an OpenDocument's `mimetype` entry comes first).
fn zip_type(names: Option<Vec<String>>, head: &[u8]) -> Result<&'static Type, AttachmentError> {
    let Some(names) = names else {
        return Err(unsupported(
            "压缩包已损坏或无法读取",
            "the zip archive is damaged or cannot be read",
        ));
    };
    for name in &names {
        let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let ext = split_extension(file).1;
        if ext.as_deref().is_some_and(is_executable_extension)
            || matches!(file, "classes.dex" | "AndroidManifest.xml")
        {
            return Err(unsupported(
                format!("压缩包中含有可执行文件（{file}），不允许上传"),
                format!("the archive holds an executable ({file})"),
            ));
        }
        if file.eq_ignore_ascii_case("vbaProject.bin") {
            return Err(unsupported(
                "不允许上传含宏的文档",
                "documents with macros may not be uploaded",
            ));
        }
    }
    let has = |prefix: &str| names.iter().any(|n| n.starts_with(prefix));
    if has("[Content_Types].xml") {
        if has("word/") {
            return Ok(&DOCX);
        }
        if has("xl/") {
            return Ok(&XLSX);
        }
        if has("ppt/") {
            return Ok(&PPTX);
        }
    }
    if names.iter().any(|n| n == "OFD.xml") {
        return Ok(&OFD);
    }
    if infer::odf::is_odt(head) {
        return Ok(&ODT);
    }
    if infer::odf::is_ods(head) {
        return Ok(&ODS);
    }
    if infer::odf::is_odp(head) {
        return Ok(&ODP);
    }
    Ok(&ZIP)
}

fn le16(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]) as u64)
}

fn le32(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64)
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

/// `n` bytes at `at`, or `None` when they are not all there.
fn read_at<R: std::io::Read + std::io::Seek>(r: &mut R, at: u64, n: usize) -> Option<Vec<u8>> {
    r.seek(std::io::SeekFrom::Start(at)).ok()?;
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// The entry names of a zip archive, from its central directory (ZIP64 included); `None`
/// when the directory cannot be read. Reads only the end of `content` and the directory.
fn zip_entries<R: std::io::Read + std::io::Seek>(content: &mut R) -> Option<Vec<String>> {
    const EOCD: &[u8] = b"PK\x05\x06";
    const EOCD64: &[u8] = b"PK\x06\x06";
    const LOCATOR64: &[u8] = b"PK\x06\x07";
    const ENTRY: &[u8] = b"PK\x01\x02";
    let len = content.seek(std::io::SeekFrom::End(0)).ok()?;
    // The end record (22 bytes) is followed by at most a 65,535-byte comment.
    let tail_at = len.checked_sub(22)?.saturating_sub(65_535);
    let tail = read_at(content, tail_at, usize::try_from(len - tail_at).ok()?)?;
    let last = tail.len().checked_sub(22)?;
    let eocd = (0..=last).rev().find(|&i| tail[i..].starts_with(EOCD))?;
    let mut count = le16(&tail, eocd + 10)?;
    let mut size = le32(&tail, eocd + 12)?;
    let mut offset = le32(&tail, eocd + 16)?;
    if count == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
        let locator = (tail_at + eocd as u64).checked_sub(20)?;
        let loc = read_at(content, locator, 20)?;
        if !loc.starts_with(LOCATOR64) {
            return None;
        }
        let record = read_at(content, le64(&loc, 8)?, 56)?;
        if !record.starts_with(EOCD64) {
            return None;
        }
        count = le64(&record, 32)?;
        size = le64(&record, 40)?;
        offset = le64(&record, 48)?;
    }
    if offset.checked_add(size)? > len || count > (size / 46) {
        return None;
    }
    let dir = read_at(content, offset, usize::try_from(size).ok()?)?;
    let end = dir.len();
    let mut at = 0usize;
    let mut names = Vec::with_capacity(count as usize);
    for _ in 0..count {
        if !dir.get(at..)?.starts_with(ENTRY) {
            return None;
        }
        let name_len = le16(&dir, at + 28)? as usize;
        let extra_len = le16(&dir, at + 30)? as usize;
        let comment_len = le16(&dir, at + 32)? as usize;
        let name = dir.get(at + 46..at + 46 + name_len)?;
        names.push(String::from_utf8_lossy(name).into_owned());
        at += 46 + name_len + extra_len + comment_len;
        if at > end {
            return None;
        }
    }
    Some(names)
}

/// Characters that change how text is shown without being seen (bidi overrides turn
/// `gpj.exe` into what looks like `exe.jpg`, zero-width ones hide differences).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// The last path segment of a declared name, without control or invisible characters and
/// with characters that file systems forbid replaced.
fn clean_name(declared: &str) -> String {
    let base = declared.rsplit(['/', '\\']).next().unwrap_or("");
    let mut out = String::with_capacity(base.len());
    for c in base.chars() {
        let c = match c {
            c if c.is_whitespace() => ' ',
            c if c.is_control() || is_invisible(c) => continue,
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c => c,
        };
        // Runs of white space (a line break, say) become one space.
        if !(c == ' ' && out.ends_with(' ')) {
            out.push(c);
        }
    }
    out
}

/// A file name that is safe to store and to offer for download: no path, no control or
/// bidi characters, no leading dots, bounded length, ending in `.{sniffed.extension}`
/// (`../../发票.PNG` → `发票.png`, `scan` → `scan.pdf`).
pub fn safe_file_name(declared: &str, sniffed: &Sniffed) -> String {
    let base = clean_name(declared);
    let stem = match split_extension(&base) {
        (stem, Some(ext)) if ext == sniffed.extension => stem,
        _ => base.as_str(),
    };
    let stem = stem.trim_matches(|c: char| c == '.' || c.is_whitespace());
    let mut out = String::new();
    for c in stem.chars().take(MAX_STEM_CHARS) {
        if out.len() + c.len_utf8() > MAX_STEM_BYTES {
            break;
        }
        out.push(c);
    }
    let mut stem = out.trim_end_matches(['.', ' ']).to_string();
    if stem.is_empty() {
        stem = "attachment".into();
    }
    // Names Windows reserves for devices, whatever the extension.
    let device = stem.split('.').next().unwrap_or("").to_ascii_uppercase();
    let reserved = matches!(device.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (device.len() == 4
            && (device.starts_with("COM") || device.starts_with("LPT"))
            && device.as_bytes()[3].is_ascii_digit());
    if reserved {
        stem.insert(0, '_');
    }
    format!("{stem}.{}", sniffed.extension)
}

/// Lower-case hex SHA-256 of the bytes: the attachment's content address.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Where the bytes with this content address are (or would be) stored.
pub fn blob_path(data_dir: &Path, sha256: &str) -> PathBuf {
    data_dir
        .join("attachments")
        .join(sha256.get(..2).unwrap_or("__"))
        .join(sha256)
}

/// Stores the bytes under their content address unless they are already there; returns the
/// address. Written to a temporary file in the same folder, flushed, then renamed.
pub async fn store(data_dir: &Path, bytes: &[u8]) -> std::io::Result<String> {
    let sha = sha256_hex(bytes);
    let path = blob_path(data_dir, &sha);
    if let Ok(meta) = tokio::fs::metadata(&path).await
        && meta.is_file()
        && meta.len() == bytes.len() as u64
    {
        return Ok(sha);
    }
    let dir = path.parent().unwrap_or(data_dir);
    tokio::fs::create_dir_all(dir).await?;
    let tmp = dir.join(format!(".{sha}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = async {
        use tokio::io::AsyncWriteExt;
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(bytes).await?;
        f.sync_all().await?;
        drop(f);
        tokio::fs::rename(&tmp, &path).await
    }
    .await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    Ok(sha)
}

fn session_not_found(id: &str) -> AttachmentError {
    AttachmentError::NotFound {
        what: "chat session",
        id: id.to_string(),
    }
}

fn attachment_not_found(id: &str) -> AttachmentError {
    AttachmentError::NotFound {
        what: "attachment",
        id: id.to_string(),
    }
}

fn takes_part(s: &session::Model, actor: &Actor) -> bool {
    s.taxpayer_id == actor.id || s.agent_id.as_deref() == Some(actor.id.as_str())
}

/// Checks an upload, stores its bytes and writes its row. With a session, the uploader must
/// take part in it (its taxpayer or its agent); otherwise the session is "not found".
pub async fn save<C: ConnectionTrait>(
    db: &C,
    data_dir: &Path,
    uploader: &Actor,
    session_id: Option<&str>,
    file_name: &str,
    bytes: &[u8],
    limit: usize,
) -> Result<attachment::Model, AttachmentError> {
    if bytes.is_empty() {
        return Err(AttachmentError::Empty);
    }
    if bytes.len() > limit {
        return Err(AttachmentError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    let sniffed = sniff(bytes, file_name)?;
    check_session(db, uploader, session_id).await?;
    let sha256 = store(data_dir, bytes).await?;
    let file_name = safe_file_name(file_name, &sniffed);
    insert_row(
        db,
        uploader,
        session_id,
        file_name,
        &sniffed,
        bytes.len(),
        sha256,
    )
    .await
}

/// Stores an upload received by [`crate::incoming::Incoming`] (already bounded and sniffed)
/// and writes its row. With a session, the uploader must take part in it; otherwise the
/// session is "not found" and the received file is dropped.
pub async fn save_staged<C: ConnectionTrait>(
    db: &C,
    data_dir: &Path,
    uploader: &Actor,
    session_id: Option<&str>,
    staged: crate::incoming::Staged,
) -> Result<attachment::Model, AttachmentError> {
    let Some(sniffed) = staged.sniffed else {
        return Err(std::io::Error::other("an attachment was received without its type").into());
    };
    check_session(db, uploader, session_id).await?;
    let file_name = safe_file_name(&staged.file_name, &sniffed);
    let size = staged.size;
    let sha256 = staged.store(data_dir).await?;
    insert_row(db, uploader, session_id, file_name, &sniffed, size, sha256).await
}

/// With a session, the uploader must take part in it (its taxpayer or its agent); otherwise
/// the session is "not found".
async fn check_session<C: ConnectionTrait>(
    db: &C,
    uploader: &Actor,
    session_id: Option<&str>,
) -> Result<(), AttachmentError> {
    if let Some(id) = session_id {
        let s = session::Entity::find_by_id(id.to_string())
            .one(db)
            .await?
            .ok_or_else(|| session_not_found(id))?;
        if !takes_part(&s, uploader) {
            return Err(session_not_found(id));
        }
    }
    Ok(())
}

/// The row of a stored file.
async fn insert_row<C: ConnectionTrait>(
    db: &C,
    uploader: &Actor,
    session_id: Option<&str>,
    file_name: String,
    sniffed: &Sniffed,
    size: usize,
    sha256: String,
) -> Result<attachment::Model, AttachmentError> {
    let row = attachment::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        sha256: Set(sha256),
        file_name: Set(file_name),
        content_type: Set(sniffed.content_type.to_string()),
        size: Set(size as i64),
        uploader_id: Set(uploader.id.clone()),
        session_id: Set(session_id.map(str::to_string)),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    tracing::debug!(attachment.id = %row.id, content_type = %row.content_type, size = row.size, "attachment saved");
    Ok(row)
}

/// Whether `viewer` may read the attachment: its uploader, an admin, someone who takes
/// part in its chat session, or staff when it goes with an offline message (staff answer
/// every offline message).
pub async fn may_view<C: ConnectionTrait>(
    db: &C,
    viewer: &Actor,
    a: &attachment::Model,
) -> Result<bool, AttachmentError> {
    if a.uploader_id == viewer.id || viewer.role == Role::Admin {
        return Ok(true);
    }
    let Some(sid) = &a.session_id else {
        return Ok(viewer.role == Role::Staff && goes_with_a_leave_message(db, &a.id).await?);
    };
    let s = session::Entity::find_by_id(sid.clone()).one(db).await?;
    Ok(s.is_some_and(|s| takes_part(&s, viewer)))
}

async fn goes_with_a_leave_message<C: ConnectionTrait>(
    db: &C,
    attachment_id: &str,
) -> Result<bool, AttachmentError> {
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    use taxdesk_workflow::entities::leave_message;
    // `attachment_ids` is a JSON list of quoted ids; ids are UUIDs (no LIKE wildcards).
    let n = leave_message::Entity::find()
        .filter(leave_message::Column::AttachmentIds.contains(format!("\"{attachment_id}\"")))
        .count(db)
        .await?;
    Ok(n > 0)
}

/// The attachment, if `viewer` may read it; "not found" otherwise.
pub async fn get_for<C: ConnectionTrait>(
    db: &C,
    viewer: &Actor,
    attachment_id: &str,
) -> Result<attachment::Model, AttachmentError> {
    let a = attachment::Entity::find_by_id(attachment_id.to_string())
        .one(db)
        .await?
        .ok_or_else(|| attachment_not_found(attachment_id))?;
    if may_view(db, viewer, &a).await? {
        Ok(a)
    } else {
        Err(attachment_not_found(attachment_id))
    }
}

/// The attachment and the path of its bytes, if `viewer` may read it. A row whose bytes are
/// missing is a fault of the server (an I/O error), not of the request.
pub async fn open_for<C: ConnectionTrait>(
    db: &C,
    data_dir: &Path,
    viewer: &Actor,
    attachment_id: &str,
) -> Result<(attachment::Model, PathBuf), AttachmentError> {
    let a = get_for(db, viewer, attachment_id).await?;
    if !is_sha256_hex(&a.sha256) {
        return Err(std::io::Error::other(format!(
            "attachment {} has a malformed content address",
            a.id
        ))
        .into());
    }
    let path = blob_path(data_dir, &a.sha256);
    let meta = tokio::fs::metadata(&path).await.map_err(|e| {
        tracing::error!(attachment.id = %a.id, path = %path.display(), error = %e, "attachment bytes missing");
        e
    })?;
    if !meta.is_file() {
        return Err(std::io::Error::other(format!("{} is not a file", path.display())).into());
    }
    Ok((a, path))
}

#[cfg(test)]
#[path = "attachment_tests.rs"]
mod tests;
