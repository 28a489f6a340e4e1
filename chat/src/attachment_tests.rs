//! Sniffing, safe names, storage and who may read an attachment.

use super::*;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Schema};

fn png() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    b.extend_from_slice(&[0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0, b'I', b'E', b'N', b'D']);
    b
}

fn jpeg() -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    b.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0\xFF\xD9");
    b
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
        .to_vec()
}

/// A Windows program: the DOS header points at a PE header.
fn exe() -> Vec<u8> {
    let mut b = vec![0u8; 0x100];
    b[0] = b'M';
    b[1] = b'Z';
    b[0x3C] = 0x40;
    b[0x40..0x44].copy_from_slice(b"PE\0\0");
    b
}

/// A stored (uncompressed) zip with these entries, as office suites and zip tools write it.
fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let header = |sig: &[u8], central: bool| {
            let mut h = sig.to_vec();
            if central {
                h.extend_from_slice(&20u16.to_le_bytes()); // made by
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // needed
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&0u16.to_le_bytes()); // stored
            h.extend_from_slice(&0u32.to_le_bytes()); // time, date
            h.extend_from_slice(&0u32.to_le_bytes()); // crc (not checked here)
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra
            if central {
                h.extend_from_slice(&0u16.to_le_bytes()); // comment
                h.extend_from_slice(&0u16.to_le_bytes()); // disk
                h.extend_from_slice(&0u16.to_le_bytes()); // internal attrs
                h.extend_from_slice(&0u32.to_le_bytes()); // external attrs
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(header(b"PK\x03\x04", false));
        out.extend_from_slice(data);
        central.extend(header(b"PK\x01\x02", true));
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

const CONTENT_TYPES: &[u8] = br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#;

fn docx() -> Vec<u8> {
    zip(&[
        ("[Content_Types].xml", CONTENT_TYPES),
        ("_rels/.rels", b"<Relationships/>"),
        ("docProps/core.xml", b"<coreProperties/>"),
        ("word/_rels/document.xml.rels", b"<Relationships/>"),
        ("word/document.xml", b"<w:document/>"),
    ])
}

fn xlsx() -> Vec<u8> {
    zip(&[
        ("[Content_Types].xml", CONTENT_TYPES),
        ("_rels/.rels", b"<Relationships/>"),
        ("xl/workbook.xml", b"<workbook/>"),
    ])
}

fn ok(bytes: &[u8], name: &str) -> Sniffed {
    match sniff(bytes, name) {
        Ok(s) => s,
        Err(e) => panic!("{name}: expected accepted, got {e}"),
    }
}

fn refused(bytes: &[u8], name: &str) {
    match sniff(bytes, name) {
        Err(AttachmentError::UnsupportedMediaType { .. }) => {}
        other => panic!("{name}: expected UnsupportedMediaType, got {other:?}"),
    }
}

#[test]
fn images_are_sniffed_from_their_bytes() {
    let s = ok(&png(), "截图.png");
    assert_eq!(
        (s.content_type, s.kind, s.extension),
        ("image/png", Kind::Image, "png")
    );
    let s = ok(&jpeg(), "photo.JPEG");
    assert_eq!(
        (s.content_type, s.kind, s.extension),
        ("image/jpeg", Kind::Image, "jpeg")
    );
    assert_eq!(ok(&jpeg(), "photo.jpg").extension, "jpg");
    assert_eq!(
        ok(b"GIF89a\x01\0\x01\0\0\0\0;", "a.gif").content_type,
        "image/gif"
    );
    assert_eq!(
        ok(b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0\x2f\0\0\0\0", "a.webp").content_type,
        "image/webp"
    );
    assert_eq!(Kind::of_content_type("image/png"), Kind::Image);
    assert_eq!(Kind::of_content_type("application/pdf"), Kind::File);
}

#[test]
fn documents_and_text_are_sniffed() {
    let s = ok(&pdf(), "纳税申报表.pdf");
    assert_eq!(
        (s.content_type, s.kind, s.extension),
        ("application/pdf", Kind::File, "pdf")
    );
    let s = ok(&docx(), "情况说明.docx");
    assert_eq!(s.content_type, DOCX.content_type);
    assert_eq!(s.extension, "docx");
    assert_eq!(ok(&xlsx(), "台账.xlsx").content_type, XLSX.content_type);
    let plain = zip(&[("a.txt", b"hello"), ("b/c.pdf", b"%PDF-1.4")]);
    assert_eq!(ok(&plain, "材料.zip").content_type, "application/zip");
    let ofd = zip(&[("OFD.xml", b"<ofd:OFD/>"), ("Doc_0/Document.xml", b"<x/>")]);
    assert_eq!(ok(&ofd, "电子发票.ofd").content_type, "application/ofd");

    let s = ok("第一行\n第二行\n".as_bytes(), "说明.txt");
    assert_eq!(
        (s.content_type, s.extension),
        ("text/plain; charset=utf-8", "txt")
    );
    let s = ok("\u{feff}税号,金额\n9133,100\n".as_bytes(), "data.csv");
    assert_eq!(
        (s.content_type, s.extension),
        ("text/csv; charset=utf-8", "csv")
    );
    // A text file without an extension gets one.
    assert_eq!(ok(b"hello", "README").extension, "txt");
}

#[test]
fn a_docx_that_claims_to_be_a_spreadsheet_is_refused() {
    refused(&docx(), "报表.xlsx");
    refused(&xlsx(), "报表.docx");
    refused(&docx(), "a.pdf");
}

#[test]
fn executables_are_refused_whatever_their_name() {
    refused(&exe(), "invoice.png");
    refused(&exe(), "invoice.pdf");
    refused(&exe(), "readme.txt");
    refused(&exe(), "setup.exe");
    refused(&exe(), "noextension");
    let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
    elf.resize(64, 0);
    refused(&elf, "photo.jpg");
    refused(&[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1, 0, 0, 0, 0], "a.png");
    refused(b"#!/bin/sh\nrm -rf /\n", "notes.txt");
    // Scripts are text, but their names say what they are for.
    for name in [
        "run.sh",
        "a.bat",
        "x.js",
        "setup.msi",
        "y.ps1",
        "z.vbs",
        "w.cmd",
        "v.jar",
    ] {
        refused(b"echo hello\n", name);
    }
    // An OLE file that is not a Word/Excel/PowerPoint document (an MSI, say).
    let mut ole = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    ole.resize(1024, 0);
    refused(&ole, "setup.doc");
    // Archives carrying programs, and macro-enabled documents.
    refused(
        &zip(&[("a.txt", b"x"), ("bin/setup.exe", b"MZ")]),
        "docs.zip",
    );
    refused(
        &zip(&[("AndroidManifest.xml", b"x"), ("classes.dex", b"dex")]),
        "a.zip",
    );
    let docm = zip(&[
        ("[Content_Types].xml", CONTENT_TYPES),
        ("word/document.xml", b"<w:document/>"),
        ("word/vbaProject.bin", b"\xD0\xCF"),
    ]);
    refused(&docm, "report.docx");
    refused(&docx(), "report.docm");
}

#[test]
fn a_declared_extension_must_match_the_bytes() {
    refused(&png(), "scan.pdf");
    refused(&pdf(), "scan.png");
    refused(&png(), "photo.jpg");
    refused(&jpeg(), "photo.png");
    refused(b"<html><script>alert(1)</script></html>", "page.html");
    refused(b"plain text", "image.png");
    // An extension we do not know is part of the name; the right one is added.
    let s = ok(&png(), "scan.final");
    assert_eq!(safe_file_name("scan.final", &s), "scan.final.png");
}

#[test]
fn other_content_and_empty_files_are_refused() {
    assert!(matches!(sniff(b"", "a.txt"), Err(AttachmentError::Empty)));
    refused(b"text with a \0 NUL", "a.txt");
    // GBK-encoded Chinese is not UTF-8.
    refused(&[0xC4, 0xE3, 0xBA, 0xC3], "a.txt");
    refused(
        b"Rar!\x1a\x07\x00\xcf\x90\x73\0\0\x0d\0\0\0\0\0\0\0",
        "a.rar",
    );
    refused(b"PK\x03\x04 truncated", "a.zip");
    // A text that mentions a PDF header is still text.
    assert_eq!(ok(b"see %PDF-1.4 above", "a.txt").extension, "txt");
}

#[test]
fn names_are_made_safe() {
    let sniffed = ok(&png(), "x.png");
    let name = |declared: &str| safe_file_name(declared, &sniffed);
    assert_eq!(name("../../etc/passwd.png"), "passwd.png");
    assert_eq!(
        name("..\\..\\Windows\\System32\\报税截图.PNG"),
        "报税截图.png"
    );
    assert_eq!(
        name("C:\\Users\\张三\\Desktop\\发票 2025.png"),
        "发票 2025.png"
    );
    assert_eq!(name("/"), "attachment.png");
    assert_eq!(name(".."), "attachment.png");
    assert_eq!(name(".png"), "attachment.png");
    assert_eq!(name("...hidden.png"), "hidden.png");
    assert_eq!(name("a\u{0}b\r\nc\u{7}.png"), "ab c.png");
    assert_eq!(name("发票\u{202E}gnp.png"), "发票gnp.png");
    assert_eq!(name("a<b>c:d\"e|f?g*.png"), "a_b_c_d_e_f_g_.png");
    assert_eq!(name("tab\there.png"), "tab here.png");
    assert_eq!(name("scan"), "scan.png");
    assert_eq!(name("CON.png"), "_CON.png");
    assert_eq!(name("com1.png"), "_com1.png");
    assert_eq!(name("console.png"), "console.png");

    let long = "税".repeat(300) + ".png";
    let n = name(&long);
    assert!(n.ends_with(".png"));
    assert!(n.len() <= MAX_STEM_BYTES + 4, "{} bytes", n.len());
    assert!(n.starts_with("税税税"));
    let long_ascii = "a".repeat(300) + ".png";
    assert_eq!(name(&long_ascii), "a".repeat(MAX_STEM_CHARS) + ".png");

    // Through sniff: a bidi trick that hides `.exe` is still refused.
    refused(&png(), "photo\u{202E}gnp.exe");
}

// ---- storage and access, on a SQLite file of our own ----

struct Fixture {
    db: DatabaseConnection,
    dir: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!(
        "taxdesk-attachment-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/t.db?mode=rwc", dir.display());
    let db = Database::connect(&url).await.unwrap();
    let schema = Schema::new(db.get_database_backend());
    db.execute(&schema.create_table_from_entity(attachment::Entity))
        .await
        .unwrap();
    db.execute(&schema.create_table_from_entity(session::Entity))
        .await
        .unwrap();
    db.execute(&schema.create_table_from_entity(taxdesk_workflow::entities::leave_message::Entity))
        .await
        .unwrap();
    let now = Utc::now();
    session::ActiveModel {
        id: Set("s-1".into()),
        taxpayer_id: Set("tp1".into()),
        status: Set("ACTIVE".into()),
        skill_group: Set("发票业务".into()),
        agent_id: Set(Some("agent1".into())),
        had_agent: Set(true),
        queue_priority: Set(0),
        queued_at: Set(None),
        assigned_at: Set(Some(now)),
        agent_replied_at: Set(None),
        ended_at: Set(None),
        ended_by: Set(None),
        booking_id: Set(None),
        first_question: Set(None),
        rating_resolved: Set(None),
        rating_satisfaction: Set(None),
        rating_comment: Set(None),
        rated_at: Set(None),
        last_activity_at: Set(now),
        open_key: Set(Some("tp1".into())),
        last_seq: Set(0),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&db)
    .await
    .unwrap();
    Fixture { db, dir }
}

fn taxpayer(id: &str) -> Actor {
    Actor::new(id, Role::Taxpayer)
}

fn is_not_found<T: std::fmt::Debug>(r: Result<T, AttachmentError>) -> bool {
    matches!(r, Err(AttachmentError::NotFound { .. }))
}

#[tokio::test]
async fn saved_bytes_are_content_addressed_and_deduplicated() {
    let f = fixture().await;
    let tp1 = taxpayer("tp1");
    let a = save(
        &f.db,
        &f.dir,
        &tp1,
        None,
        "../截图.PNG",
        &png(),
        DEFAULT_LIMIT,
    )
    .await
    .unwrap();
    assert_eq!(a.file_name, "截图.png");
    assert_eq!(a.content_type, "image/png");
    assert_eq!(a.size, png().len() as i64);
    assert_eq!(a.sha256, sha256_hex(&png()));
    let path = blob_path(&f.dir, &a.sha256);
    assert_eq!(
        path,
        f.dir
            .join("attachments")
            .join(&a.sha256[..2])
            .join(&a.sha256)
    );
    assert_eq!(std::fs::read(&path).unwrap(), png());

    let b = save(
        &f.db,
        &f.dir,
        &tp1,
        None,
        "again.png",
        &png(),
        DEFAULT_LIMIT,
    )
    .await
    .unwrap();
    assert_ne!(a.id, b.id, "each upload is its own attachment");
    assert_eq!(a.sha256, b.sha256);
    let files: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one copy, no temporary files left: {files:?}"
    );
}

#[tokio::test]
async fn uploads_are_checked_before_anything_is_written() {
    let f = fixture().await;
    let tp1 = taxpayer("tp1");
    let r = save(&f.db, &f.dir, &tp1, None, "a.png", &png(), 10).await;
    assert!(
        matches!(r, Err(AttachmentError::TooLarge { limit: 10, .. })),
        "{r:?}"
    );
    let r = save(&f.db, &f.dir, &tp1, None, "a.png", &exe(), DEFAULT_LIMIT).await;
    assert!(matches!(
        r,
        Err(AttachmentError::UnsupportedMediaType { .. })
    ));
    let r = save(&f.db, &f.dir, &tp1, None, "a.png", b"", DEFAULT_LIMIT).await;
    assert!(matches!(r, Err(AttachmentError::Empty)));
    let r = save(
        &f.db,
        &f.dir,
        &tp1,
        Some("nope"),
        "a.png",
        &png(),
        DEFAULT_LIMIT,
    )
    .await;
    assert!(is_not_found(r));
    // Another taxpayer's session is "not found" too.
    let r = save(
        &f.db,
        &f.dir,
        &taxpayer("tp2"),
        Some("s-1"),
        "a.png",
        &png(),
        DEFAULT_LIMIT,
    )
    .await;
    assert!(is_not_found(r));
    assert!(!f.dir.join("attachments").exists(), "nothing stored");
    let rows = attachment::Entity::find().all(&f.db).await.unwrap();
    assert!(rows.is_empty());
}

#[tokio::test]
async fn only_the_uploader_the_participants_and_admins_may_open_an_attachment() {
    let f = fixture().await;
    let (tp1, tp2) = (taxpayer("tp1"), taxpayer("tp2"));
    let agent = Actor::new("agent1", Role::Staff);
    let other_agent = Actor::new("agent2", Role::Staff);
    let admin = Actor::new("boss", Role::Admin);

    let in_session = save(
        &f.db,
        &f.dir,
        &tp1,
        Some("s-1"),
        "a.pdf",
        &pdf(),
        DEFAULT_LIMIT,
    )
    .await
    .unwrap();
    assert_eq!(in_session.session_id.as_deref(), Some("s-1"));
    // The agent of the session may upload into it as well.
    let from_agent = save(
        &f.db,
        &f.dir,
        &agent,
        Some("s-1"),
        "b.png",
        &png(),
        DEFAULT_LIMIT,
    )
    .await
    .unwrap();
    let alone = save(&f.db, &f.dir, &tp1, None, "c.png", &png(), DEFAULT_LIMIT)
        .await
        .unwrap();

    for who in [&tp1, &agent, &admin] {
        let (m, path) = open_for(&f.db, &f.dir, who, &in_session.id).await.unwrap();
        assert_eq!(m.id, in_session.id);
        assert_eq!(std::fs::read(path).unwrap(), pdf());
        open_for(&f.db, &f.dir, who, &from_agent.id).await.unwrap();
    }
    for who in [&tp2, &other_agent] {
        assert!(is_not_found(
            open_for(&f.db, &f.dir, who, &in_session.id).await
        ));
        assert!(is_not_found(open_for(&f.db, &f.dir, who, &alone.id).await));
    }
    open_for(&f.db, &f.dir, &tp1, &alone.id).await.unwrap();
    open_for(&f.db, &f.dir, &admin, &alone.id).await.unwrap();
    // Without a session, only its uploader (and admins) see it — not the agent.
    assert!(is_not_found(
        open_for(&f.db, &f.dir, &agent, &alone.id).await
    ));
    assert!(is_not_found(open_for(&f.db, &f.dir, &tp1, "missing").await));

    // Bytes gone from disk: a server fault, not "not found".
    std::fs::remove_file(blob_path(&f.dir, &alone.sha256)).unwrap();
    let r = open_for(&f.db, &f.dir, &tp1, &alone.id).await;
    assert!(matches!(r, Err(AttachmentError::Io(_))), "{r:?}");
}

/// Streams `bytes` through an [`crate::incoming::Incoming`] in chunks of `chunk` bytes.
async fn received(
    dir: &Path,
    bytes: &[u8],
    name: &str,
    chunk: usize,
) -> Result<crate::incoming::Staged, AttachmentError> {
    use crate::incoming::{Check, Incoming};
    let mut incoming = Incoming::begin(dir, name, DEFAULT_LIMIT, Check::Attachment).await?;
    for part in bytes.chunks(chunk) {
        incoming.push(part).await?;
    }
    incoming.finish().await
}

#[tokio::test]
async fn a_streamed_upload_is_sniffed_as_the_whole_would_be() {
    let dir = std::env::temp_dir().join(format!("taxdesk-incoming-{}", uuid::Uuid::new_v4()));
    // A zip longer than the head, its directory at the end: read back from the file.
    let mut big_docx = Vec::new();
    let filler = vec![b'x'; 100 * 1024];
    let entries: Vec<(&str, &[u8])> = vec![
        ("[Content_Types].xml", CONTENT_TYPES),
        ("_rels/.rels", b"<Relationships/>"),
        ("word/media/filler.txt", &filler),
        ("word/document.xml", b"<w:document/>"),
    ];
    big_docx.extend(zip(&entries));
    let text = "纳税申报说明\n".repeat(20_000).into_bytes();
    for (bytes, name) in [
        (png(), "截图.png"),
        (docx(), "申报表.docx"),
        (big_docx.clone(), "big.docx"),
        (xlsx(), "表.xlsx"),
        (text.clone(), "说明.txt"),
    ] {
        // 7-byte chunks cut multi-byte characters and magic numbers apart.
        for chunk in [7, 64 * 1024] {
            let staged = received(&dir, &bytes, name, chunk).await.unwrap();
            assert_eq!(
                staged.sniffed,
                Some(ok(&bytes, name)),
                "{name} in {chunk}-byte chunks"
            );
            assert_eq!(staged.sha256, sha256_hex(&bytes));
            assert_eq!(staged.size, bytes.len());
        }
    }
    // Text with a NUL past the head is not text.
    let mut not_text = text.clone();
    not_text.push(0);
    assert!(matches!(
        received(&dir, &not_text, "a.txt", 4096).await,
        Err(AttachmentError::UnsupportedMediaType { .. })
    ));
    // A program is refused from its first bytes; a program's name before any byte.
    let mut program = vec![0u8; 200 * 1024];
    program[..2].copy_from_slice(b"MZ");
    program[0x3C] = 0x80;
    program[0x80..0x84].copy_from_slice(b"PE\0\0");
    let mut incoming = crate::incoming::Incoming::begin(
        &dir,
        "x.png",
        DEFAULT_LIMIT,
        crate::incoming::Check::Attachment,
    )
    .await
    .unwrap();
    let refused = incoming.push(&program[..HEAD_LEN]).await;
    assert!(
        matches!(refused, Err(AttachmentError::UnsupportedMediaType { .. })),
        "{refused:?}"
    );
    drop(incoming);
    assert!(matches!(
        crate::incoming::Incoming::begin(&dir, "setup.exe", 10, crate::incoming::Check::Attachment)
            .await,
        Err(AttachmentError::UnsupportedMediaType { .. })
    ));
    // Over the limit while streaming.
    let mut small =
        crate::incoming::Incoming::begin(&dir, "a.png", 10, crate::incoming::Check::Attachment)
            .await
            .unwrap();
    assert!(matches!(
        small.push(&png()).await,
        Err(AttachmentError::TooLarge { .. })
    ));
    drop(small);
    // Every partial or refused upload is gone; nothing else was left behind.
    let left: Vec<_> = std::fs::read_dir(dir.join("attachments").join(".incoming"))
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
