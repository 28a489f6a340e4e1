//! Attachments (附件) in GraphQL: `uploadAttachment` by the GraphQL multipart request spec.
//! The bytes are checked and stored by `taxdesk_chat::attachment`; they are downloaded from
//! the transport's `GET /attachments/{id}` (the object's `url`, a link signed for the
//! viewer: `taxdesk_chat::download_link`).

use async_graphql::{ComplexObject, Context, ErrorExtensions, ID, Object, SimpleObject, Upload};
use taxdesk_chat::attachment::{self as service, AttachmentError, Settings};
use taxdesk_chat::download_link::{DownloadLinks, percent_encode};
use taxdesk_chat::entities::attachment as row;
use taxdesk_chat::incoming::StagedUploads;
use taxdesk_workflow::Workflow;

use crate::error::{Code, coded, internal};
use crate::identity::{Identity, RequestId, actor};

/// An uploaded file or image. Its type was sniffed from its bytes.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct Attachment {
    pub id: ID,
    /// A safe name: no path, the extension of the sniffed type.
    pub file_name: String,
    pub content_type: String,
    /// Bytes.
    pub size: i64,
}

#[ComplexObject]
impl Attachment {
    /// Where the bytes are downloaded (same origin as `/graphql`): a short-lived link
    /// signed for the viewer (`TAXDESK_LINK_TTL`), usable in `<img src>` and `<a href>`
    /// without a header. After it expires, ask for the attachment again, or download
    /// `/attachments/{id}` with the `Authorization` header.
    async fn url(&self, ctx: &Context<'_>) -> String {
        let viewer = match ctx.data_opt::<Identity>() {
            Some(Identity::User(v)) => Some(v.id.as_str()),
            _ => None,
        };
        match (ctx.data_opt::<DownloadLinks>(), viewer) {
            (Some(links), Some(user)) => links.url(&self.id, user, now_secs()),
            // Nobody to sign for: the header is the only way in.
            _ => format!("/attachments/{}", percent_encode(&self.id)),
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl From<row::Model> for Attachment {
    fn from(m: row::Model) -> Self {
        Attachment {
            id: ID(m.id),
            file_name: m.file_name,
            content_type: m.content_type,
            size: m.size,
        }
    }
}

fn to_gql(ctx: &Context<'_>, e: AttachmentError) -> async_graphql::Error {
    match e {
        AttachmentError::Empty => coded(Code::InvalidInput, "文件为空", "the file is empty")
            .extend_with(|_, ext| ext.set("field", "file")),
        AttachmentError::TooLarge { limit, .. } => coded(
            Code::PayloadTooLarge,
            format!("文件超过 {limit} 字节上限"),
            format!("the file is larger than the {limit} byte limit"),
        ),
        AttachmentError::UnsupportedMediaType { zh, en } => {
            coded(Code::UnsupportedMediaType, zh, en)
        }
        AttachmentError::NotFound { what, id } => coded(
            Code::NotFound,
            format!("未找到（{what} {id}）"),
            format!("{what} {id} not found"),
        ),
        e @ (AttachmentError::Io(_) | AttachmentError::Database(_)) => {
            let rid = ctx
                .data_opt::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default();
            tracing::error!(request.id = %rid, error = %e, "attachment storage failed");
            internal(&rid)
        }
    }
}

#[derive(Default)]
pub struct AttachmentMutation;

#[Object]
impl AttachmentMutation {
    /// Uploads a file or image (a POST in the GraphQL multipart request format). With a
    /// `sessionId` the uploader must take part in that chat. Refused with
    /// `PAYLOAD_TOO_LARGE` over the size limit and `UNSUPPORTED_MEDIA_TYPE` when the bytes
    /// are not an accepted type, do not match the file name, or are executable.
    async fn upload_attachment(
        &self,
        ctx: &Context<'_>,
        file: Upload,
        session_id: Option<ID>,
    ) -> async_graphql::Result<Attachment> {
        let uploader = actor(ctx)?;
        let Some(settings) = ctx.data_opt::<Settings>() else {
            return Err(coded(
                Code::BadRequest,
                "上传文件须使用 POST multipart/form-data 请求",
                "uploads must be sent as a multipart/form-data POST",
            ));
        };
        let wf = ctx.data_unchecked::<Workflow>();
        let session_id = session_id.as_ref().map(|id| id.as_str());
        // Received by the transport as it streamed in: bounded, sniffed, in a file.
        if let Some(staged) = ctx.data_opt::<StagedUploads>().and_then(|s| s.take(file.0)) {
            let saved =
                service::save_staged(wf.db(), &settings.data_dir, &uploader, session_id, staged)
                    .await
                    .map_err(|e| to_gql(ctx, e))?;
            return Ok(saved.into());
        }
        let upload = file.value(ctx).map_err(|e| {
            coded(
                Code::InvalidInput,
                "无法读取上传的文件",
                format!("the uploaded file cannot be read: {e}"),
            )
            .extend_with(|_, ext| ext.set("field", "file"))
        })?;
        let saved = service::save(
            wf.db(),
            &settings.data_dir,
            &uploader,
            session_id,
            &upload.filename,
            &upload.content,
            settings.limit,
        )
        .await
        .map_err(|e| to_gql(ctx, e))?;
        Ok(saved.into())
    }
}
