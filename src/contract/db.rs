//! Reading the catalog: the columns of Drop's tables as the connected role resolves them (its
//! `search_path`), its privileges on them, its role memberships and the tables' indexes.

use std::collections::{HashMap, HashSet};

use sqlx::PgPool;

use super::{GRANTS, Report, SERVER_ROLES, TABLES};

/// Measure the connected database against the contract.
pub async fn inspect(pool: &PgPool) -> Result<Report, sqlx::Error> {
    let tables: Vec<String> = TABLES.iter().map(|t| t.to_string()).collect();
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "select c.relname::text, a.attname::text, t.typname::text
           from unnest($1::text[]) as wanted(name)
           join pg_class c on c.oid = to_regclass(quote_ident(wanted.name))
           join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
           join pg_type t on t.oid = a.atttypid",
    )
    .bind(&tables)
    .fetch_all(pool)
    .await?;
    let types: HashMap<(String, String), String> = columns.into_iter().map(|(t, c, u)| ((t, c), u)).collect();

    let asked: Vec<(String, String)> =
        GRANTS.iter().flat_map(|g| g.privileges.iter().map(|p| (g.table.to_owned(), p.to_string()))).collect();
    let (grant_tables, grant_privileges): (Vec<String>, Vec<String>) = asked.into_iter().unzip();
    let held: Vec<(String, String)> = sqlx::query_as(
        "select wanted.tbl, wanted.privilege
           from unnest($1::text[], $2::text[]) as wanted(tbl, privilege)
          where to_regclass(quote_ident(wanted.tbl)) is not null
            and has_table_privilege(to_regclass(quote_ident(wanted.tbl)), wanted.privilege)",
    )
    .bind(&grant_tables)
    .bind(&grant_privileges)
    .fetch_all(pool)
    .await?;

    let roles: Vec<String> = SERVER_ROLES.iter().map(|(r, _)| r.to_string()).collect();
    let member_of: Vec<String> = sqlx::query_scalar(
        "select r.rolname::text from pg_roles r
          where r.rolname = any($1) and pg_has_role(current_user, r.oid, 'member')",
    )
    .bind(&roles)
    .fetch_all(pool)
    .await?;

    let indexes: Vec<(String, String)> = sqlx::query_as(
        "select c.relname::text, pg_get_indexdef(i.indexrelid)
           from unnest($1::text[]) as wanted(name)
           join pg_class c on c.oid = to_regclass(quote_ident(wanted.name))
           join pg_index i on i.indrelid = c.oid",
    )
    .bind(&tables)
    .fetch_all(pool)
    .await?;

    let triggers: Vec<(String, String)> = sqlx::query_as(
        "select c.relname::text, t.tgname::text
           from unnest($1::text[]) as wanted(name)
           join pg_class c on c.oid = to_regclass(quote_ident(wanted.name))
           join pg_trigger t on t.tgrelid = c.oid and not t.tgisinternal",
    )
    .bind(&tables)
    .fetch_all(pool)
    .await?;

    Ok(Report::from_catalog(
        &types,
        &held.into_iter().collect::<HashSet<_>>(),
        &member_of.into_iter().collect(),
        &indexes,
        &triggers.into_iter().collect(),
    ))
}
