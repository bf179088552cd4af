//! One way to run SQL on either engine: SQLite (the embedded default, through
//! `rusqlite`) or PostgreSQL (for several hosts, through `postgres` and an `r2d2` pool).
//!
//! Queries are written once, in the SQL both engines accept, with `?1`-style parameters
//! (rewritten to `$1` for PostgreSQL). Values cross as the four kinds the schema uses
//! (integers, text, bytes, null): booleans are integers, as SQLite stores them, and
//! PostgreSQL's parameters are converted to the types its planner inferred for them.

use anyhow::{Context, Result, anyhow, bail};
use parking_lot::Mutex;
use postgres::types::{ToSql, Type};
use std::collections::HashMap;

/// A value as both engines store it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// What can be a query's parameter.
pub trait Param {
    fn value(&self) -> Value;
}

macro_rules! int_params {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn value(&self) -> Value {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_params!(i64, i32, u32, u64, usize);

impl Param for bool {
    fn value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl Param for str {
    fn value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl Param for String {
    fn value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl Param for [u8] {
    fn value(&self) -> Value {
        Value::Bytes(self.to_vec())
    }
}

impl Param for Vec<u8> {
    fn value(&self) -> Value {
        Value::Bytes(self.clone())
    }
}

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value {
        (**self).value()
    }
}

impl<T: Param> Param for Option<T> {
    fn value(&self) -> Value {
        self.as_ref().map_or(Value::Null, Param::value)
    }
}

/// What a column can be read as.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Result<Self>;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Int(i) => Ok(*i),
            other => bail!("expected an integer, found {other:?}"),
        }
    }
}

impl FromValue for u64 {
    fn from_value(value: &Value) -> Result<Self> {
        Ok(i64::from_value(value)? as u64)
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self> {
        Ok(i64::from_value(value)? != 0)
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            other => bail!("expected text, found {other:?}"),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Bytes(b) => Ok(b.clone()),
            other => bail!("expected bytes, found {other:?}"),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// A result row.
pub struct Row(Vec<Value>);

impl Row {
    pub fn get<T: FromValue>(&self, column: usize) -> Result<T> {
        let value = self
            .0
            .get(column)
            .ok_or_else(|| anyhow!("no column {column} in the row"))?;
        T::from_value(value).with_context(|| format!("reading column {column}"))
    }

    /// A column that holds a record as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self, column: usize) -> Result<T> {
        let text: String = self.get(column)?;
        serde_json::from_str(&text)
            .with_context(|| format!("decoding the record in column {column}"))
    }
}

/// A connection, or a transaction, of either engine.
pub trait Sql {
    /// Runs a statement; returns how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> Result<u64>;
    fn query(&mut self, sql: &str, params: &[&dyn Param]) -> Result<Vec<Row>>;
}

impl dyn Sql + '_ {
    /// The first row, if any.
    pub fn query_opt(&mut self, sql: &str, params: &[&dyn Param]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row, which must exist.
    pub fn query_one(&mut self, sql: &str, params: &[&dyn Param]) -> Result<Row> {
        self.query_opt(sql, params)?
            .ok_or_else(|| anyhow!("the query returned no row: {sql}"))
    }
}

// ---- SQLite ----

pub(super) struct Lite<'a>(pub(super) &'a rusqlite::Connection);

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Bytes(b) => ValueRef::Blob(b),
        }))
    }
}

fn lite_params(params: &[&dyn Param]) -> Vec<Value> {
    params.iter().map(|p| p.value()).collect()
}

impl Sql for Lite<'_> {
    fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> Result<u64> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let params = lite_params(params);
        Ok(stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }

    fn query(&mut self, sql: &str, params: &[&dyn Param]) -> Result<Vec<Row>> {
        use rusqlite::types::ValueRef;
        let mut stmt = self.0.prepare_cached(sql)?;
        let columns = stmt.column_count();
        let params = lite_params(params);
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(i) => Value::Int(i),
                    ValueRef::Real(f) => Value::Int(f as i64),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}

// ---- PostgreSQL ----

/// A pooled PostgreSQL connection with the statements it prepared.
pub(super) struct PgConn {
    pub(super) client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

pub(super) struct PgManager(pub(super) postgres::Config);

impl r2d2::ManageConnection for PgManager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: self.0.connect(postgres::NoTls)?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

pub(super) struct Pg<'a, C: postgres::GenericClient> {
    pub(super) client: &'a mut C,
    pub(super) statements: &'a mut HashMap<String, postgres::Statement>,
}

impl PgConn {
    pub(super) fn parts(
        &mut self,
    ) -> (
        &mut postgres::Client,
        &mut HashMap<String, postgres::Statement>,
    ) {
        (&mut self.client, &mut self.statements)
    }
}

/// `?1` → `$1`, outside string literals.
pub(super) fn dollar_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => out.push('$'),
            c => out.push(c),
        }
    }
    out
}

type PgParam = Box<dyn ToSql + Sync>;

/// A value as the parameter type PostgreSQL inferred.
fn pg_param(value: Value, ty: &Type) -> Result<PgParam> {
    Ok(match (value, ty) {
        (Value::Null, &Type::INT8) => Box::new(None::<i64>),
        (Value::Null, &Type::INT4) => Box::new(None::<i32>),
        (Value::Null, &Type::INT2) => Box::new(None::<i16>),
        (Value::Null, &Type::BOOL) => Box::new(None::<bool>),
        (Value::Null, &Type::BYTEA) => Box::new(None::<Vec<u8>>),
        (Value::Null, _) => Box::new(None::<String>),
        (Value::Int(i), &Type::INT8) => Box::new(i),
        (Value::Int(i), &Type::INT4) => Box::new(i32::try_from(i)?),
        (Value::Int(i), &Type::INT2) => Box::new(i16::try_from(i)?),
        (Value::Int(i), &Type::BOOL) => Box::new(i != 0),
        (Value::Int(i), _) => Box::new(i.to_string()),
        (Value::Text(s), _) => Box::new(s),
        (Value::Bytes(b), _) => Box::new(b),
    })
}

fn pg_row(row: &postgres::Row) -> Result<Row> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        values.push(
            match *ty {
                Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::Int),
                Type::INT4 => row
                    .try_get::<_, Option<i32>>(i)?
                    .map(|v| Value::Int(v.into())),
                Type::INT2 => row
                    .try_get::<_, Option<i16>>(i)?
                    .map(|v| Value::Int(v.into())),
                Type::BOOL => row
                    .try_get::<_, Option<bool>>(i)?
                    .map(|v| Value::Int(v.into())),
                Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Bytes),
                _ => row.try_get::<_, Option<String>>(i)?.map(Value::Text),
            }
            .unwrap_or(Value::Null),
        );
    }
    Ok(Row(values))
}

impl<C: postgres::GenericClient> Pg<'_, C> {
    fn prepare(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
    ) -> Result<(postgres::Statement, Vec<PgParam>)> {
        let stmt = match self.statements.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s = self
                    .client
                    .prepare(&dollar_params(sql))
                    .with_context(|| format!("preparing {sql}"))?;
                self.statements.insert(sql.to_owned(), s.clone());
                s
            }
        };
        let values = params
            .iter()
            .zip(stmt.params())
            .map(|(p, ty)| pg_param(p.value(), ty))
            .collect::<Result<_>>()?;
        Ok((stmt, values))
    }
}

fn borrow(params: &[PgParam]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref()).collect()
}

impl<C: postgres::GenericClient> Sql for Pg<'_, C> {
    fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> Result<u64> {
        let (stmt, values) = self.prepare(sql, params)?;
        Ok(self.client.execute(&stmt, &borrow(&values))?)
    }

    fn query(&mut self, sql: &str, params: &[&dyn Param]) -> Result<Vec<Row>> {
        let (stmt, values) = self.prepare(sql, params)?;
        self.client
            .query(&stmt, &borrow(&values))?
            .iter()
            .map(pg_row)
            .collect()
    }
}

/// The engine behind a [`super::Metadata`].
pub(super) enum Engine {
    Sqlite(Mutex<rusqlite::Connection>),
    Postgres(r2d2::Pool<PgManager>),
    /// Left behind by a drop that closes the pool elsewhere.
    Closed,
}

impl Drop for Engine {
    fn drop(&mut self) {
        // A `postgres` client closes its connection by blocking on a runtime of its own,
        // which panics on a thread that drives async tasks; the last owner of the
        // metadata is often one. So the pool is closed on a thread of its own there.
        if matches!(self, Engine::Postgres(_)) && tokio::runtime::Handle::try_current().is_ok() {
            let engine = std::mem::replace(self, Engine::Closed);
            std::thread::spawn(move || drop(engine));
        }
    }
}

impl Engine {
    pub(super) fn with<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        match self {
            Engine::Sqlite(conn) => f(&mut Lite(&conn.lock())),
            Engine::Postgres(pool) => {
                let mut conn = pool.get()?;
                let (client, statements) = conn.parts();
                f(&mut Pg { client, statements })
            }
            Engine::Closed => unreachable!("a closed engine is never used"),
        }
    }

    pub(super) fn transaction<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        match self {
            Engine::Sqlite(conn) => {
                let mut conn = conn.lock();
                let tx = conn.transaction()?;
                let out = f(&mut Lite(&tx))?;
                tx.commit()?;
                Ok(out)
            }
            Engine::Postgres(pool) => {
                let mut conn = pool.get()?;
                let (client, statements) = conn.parts();
                let mut tx = client.transaction()?;
                let out = f(&mut Pg {
                    client: &mut tx,
                    statements,
                })?;
                tx.commit()?;
                Ok(out)
            }
            Engine::Closed => unreachable!("a closed engine is never used"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_dollars_outside_literals_only() {
        assert_eq!(
            dollar_params("SELECT a FROM t WHERE b = ?1 AND c = '?' AND (?2 IS NULL OR d = ?2)"),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND ($2 IS NULL OR d = $2)"
        );
    }

    #[test]
    fn sqlite_round_trips_every_kind_of_value() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut lite = Lite(&conn);
        let sql: &mut dyn Sql = &mut lite;
        sql.execute("CREATE TABLE t (i INTEGER, s TEXT, b BLOB, n TEXT)", &[])
            .unwrap();
        let none: Option<&str> = None;
        sql.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
            &[&true, &"text", &b"\x00\x01".as_slice(), &none],
        )
        .unwrap();
        let row = sql.query_one("SELECT i, s, b, n FROM t", &[]).unwrap();
        assert!(row.get::<bool>(0).unwrap());
        assert_eq!(row.get::<String>(1).unwrap(), "text");
        assert_eq!(row.get::<Vec<u8>>(2).unwrap(), vec![0, 1]);
        assert_eq!(row.get::<Option<String>>(3).unwrap(), None);
        assert!(row.get::<String>(0).is_err(), "an integer is not text");
    }
}
