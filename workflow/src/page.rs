//! Cursor pages over time-ordered ids (UUID v7): newest first, "load more" with `after`.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use crate::error::{Error, Result};

pub const DEFAULT_SIZE: u64 = 20;
pub const MAX_SIZE: u64 = 100;

/// `first/after` walks towards older rows; `last/before` towards newer ones.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next: bool,
    pub has_previous: bool,
    pub total: u64,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next: self.has_next,
            has_previous: self.has_previous,
            total: self.total,
        }
    }
}

/// A row's place in the order, which is also its cursor.
pub trait Keyed {
    fn key(&self) -> &str;
}

fn size(field: &str, n: Option<i32>) -> Result<Option<u64>> {
    match n {
        None => Ok(None),
        Some(n) if (0..=MAX_SIZE as i32).contains(&n) => Ok(Some(n as u64)),
        Some(n) => Err(Error::input(
            field,
            format!("{field} 须在 0 到 {MAX_SIZE} 之间（现为 {n}）"),
            format!("{field} must be between 0 and {MAX_SIZE} (got {n})"),
        )),
    }
}

pub async fn newest_first<E, C>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    key: C,
    req: &PageRequest,
) -> Result<Page<E::Model>>
where
    E: EntityTrait,
    C: ColumnTrait,
    E::Model: Keyed + Send + Sync,
{
    let first = size("first", req.first)?;
    let last = size("last", req.last)?;
    let total = select.clone().count(db).await?;
    let mut q = select;
    if let Some(a) = &req.after {
        q = q.filter(key.lt(a.as_str()));
    }
    if let Some(b) = &req.before {
        q = q.filter(key.gt(b.as_str()));
    }
    let backwards = last.is_some() && first.is_none();
    let n = if backwards { last } else { first }.unwrap_or(DEFAULT_SIZE);
    q = if backwards {
        q.order_by_asc(key)
    } else {
        q.order_by_desc(key)
    };
    let mut items = q.limit(n + 1).all(db).await?;
    let more = items.len() as u64 > n;
    items.truncate(n as usize);
    if backwards {
        items.reverse();
        Ok(Page {
            items,
            has_next: req.before.is_some(),
            has_previous: more,
            total,
        })
    } else {
        Ok(Page {
            items,
            has_next: more,
            has_previous: req.after.is_some(),
            total,
        })
    }
}
