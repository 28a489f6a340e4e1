//! Delivers outbox emails: over SMTP when `TAXDESK_SMTP_URL` is set, else as `.eml` files
//! under `DATA_DIR/outbox/` (named by the email's id, written atomically, so a file is never
//! there twice).

use std::path::PathBuf;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use taxdesk_workflow::entities::outbox_email;

use crate::handler::JobError;

#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `smtp://host:25`, `smtps://user:pass@host`, `smtp://host:587?tls=required`.
    pub smtp_url: Option<String>,
    pub outbox_dir: PathBuf,
    /// The sender, e.g. `征纳互动 <noreply@etax.example.gov.cn>`.
    pub from: String,
}

enum Transport {
    Files(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

impl Mailer {
    pub fn new(c: &MailConfig) -> Result<Mailer, String> {
        let from: Mailbox = c
            .from
            .parse()
            .map_err(|e| format!("mail sender {:?}: {e}", c.from))?;
        let transport = match &c.smtp_url {
            Some(url) => {
                let t: AsyncSmtpTransport<Tokio1Executor> =
                    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                        .map_err(|e| format!("TAXDESK_SMTP_URL: {e}"))?
                        .build();
                Transport::Smtp(t)
            }
            None => Transport::Files(c.outbox_dir.clone()),
        };
        Ok(Mailer { from, transport })
    }

    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Files(dir) => format!(".eml files in {}", dir.display()),
            Transport::Smtp(_) => "SMTP".into(),
        }
    }

    fn message(&self, e: &outbox_email::Model) -> Result<Message, JobError> {
        let to: Mailbox = e
            .to_address
            .parse()
            .map_err(|err| JobError::permanent(format!("recipient {:?}: {err}", e.to_address)))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(e.subject.clone())
            // Receivers can drop a duplicate by this id should a delivery ever repeat.
            .message_id(Some(format!("<{}@taxdesk>", e.id)))
            .multipart(MultiPart::alternative_plain_html(
                e.body_text.clone(),
                e.body_html.clone(),
            ))
            .map_err(|err| JobError::permanent(format!("building the message: {err}")))
    }

    pub async fn deliver(&self, e: &outbox_email::Model) -> Result<(), JobError> {
        let message = self.message(e)?;
        match &self.transport {
            Transport::Files(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|err| JobError::retry(format!("creating {}: {err}", dir.display())))?;
                let tmp = dir.join(format!(".{}.eml.tmp", e.id));
                let path = dir.join(format!("{}.eml", e.id));
                tokio::fs::write(&tmp, message.formatted())
                    .await
                    .map_err(|err| JobError::retry(format!("writing {}: {err}", tmp.display())))?;
                tokio::fs::rename(&tmp, &path).await.map_err(|err| {
                    JobError::retry(format!("renaming to {}: {err}", path.display()))
                })?;
                Ok(())
            }
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|err| {
                if err.is_permanent() {
                    JobError::permanent(format!("SMTP refused: {err}"))
                } else {
                    JobError::retry(format!("SMTP: {err}"))
                }
            }),
        }
    }
}
