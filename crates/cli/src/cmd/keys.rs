//! `ultracore keys create | list | revoke`: the API keys of the data
//! directory (`<data dir>/keys.json`, hashes only).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use ultracore_auth::{KeyRecord, KeyStore, Role, Scope};

use crate::output::{clip, table};
use crate::LogArgs;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key and print it once; only its hash is stored.
    ///
    /// Example: ultracore keys create --role trader --portfolio pf-1 --portfolio pf-2 --name "desk 4"
    ///
    /// A customer's key (the bank's app, for one customer): ultracore keys
    /// create --role customer --customer c-1 --portfolio pf-c1
    Create(CreateArgs),
    /// List the keys: id, name, role, portfolios, when created and revoked.
    ///
    /// Example: ultracore keys list --json
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key. A running server stops accepting it within about a
    /// second.
    ///
    /// Example: ultracore keys revoke k7dq2mzx4hfa
    Revoke {
        /// The key's id (`ultracore keys list` shows them).
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// viewer, trader, portfolio-manager, auditor, admin, customer or integration.
    #[arg(long, value_name = "ROLE")]
    role: Role,
    /// The customer a customer key speaks for (required with --role customer).
    #[arg(long, value_name = "ID")]
    customer: Option<String>,
    /// A portfolio the key may see; repeat for several.
    #[arg(long = "portfolio", value_name = "ID")]
    portfolios: Vec<String>,
    /// Every portfolio, present and future (what auditor and admin keys get
    /// without --portfolio).
    #[arg(long, conflicts_with = "portfolios")]
    all_portfolios: bool,
    /// A name to recognise the key by (at most 64 characters).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Print exactly {"id": …, "key": …}.
    #[arg(long)]
    json: bool,
}

/// Where the keys live: the data directory, as for the read models.
pub fn key_store(args: &LogArgs) -> Result<KeyStore> {
    let dir: PathBuf = args.config().data_dir();
    KeyStore::open(&dir).with_context(|| format!("opening the API keys of {}", dir.display()))
}

pub fn run(args: &LogArgs, command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Create(a) => create(args, a),
        KeysCommand::List { json } => list(args, json),
        KeysCommand::Revoke { id } => revoke(args, &id),
    }
}

fn create(args: &LogArgs, a: CreateArgs) -> Result<()> {
    let scope = if a.all_portfolios {
        Scope::All
    } else if !a.portfolios.is_empty() {
        Scope::portfolios(a.portfolios)?
    } else if matches!(a.role, Role::Auditor | Role::Admin) {
        Scope::All
    } else if matches!(a.role, Role::Customer | Role::Integration) {
        // A customer without investments: the assistant, no portfolio; an
        // outside system publishes and reads nothing.
        Scope::None
    } else {
        // A viewer, trader or portfolio manager of every portfolio should be
        // a decision, not a default.
        bail!(
            "a {} key needs --portfolio ID (repeat for several) or --all-portfolios",
            a.role
        );
    };
    let store = key_store(args)?;
    let (record, key) =
        store.create_for(a.role, scope, a.customer.as_deref(), a.name.as_deref())?;
    if a.json {
        println!("{}", json!({"id": record.id, "key": key.expose()}));
        return Ok(());
    }
    print!("{}", records_table(std::slice::from_ref(&record), false));
    println!();
    println!("{}", key.expose());
    println!();
    println!(
        "This key is shown once and cannot be shown again: store it now. \
         Send it as 'Authorization: Bearer <key>'."
    );
    Ok(())
}

fn list(args: &LogArgs, json: bool) -> Result<()> {
    let store = key_store(args)?;
    let records = store.list()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&records)?);
    } else if records.is_empty() {
        println!(
            "No API keys in {}; create one with `ultracore keys create --role admin`.",
            store.path().display()
        );
    } else {
        print!("{}", records_table(&records, true));
    }
    Ok(())
}

fn revoke(args: &LogArgs, id: &str) -> Result<()> {
    let store = key_store(args)?;
    let before = store.list()?.into_iter().find(|r| r.id.as_str() == id);
    if let Some(at) = before.and_then(|r| r.revoked_at) {
        println!("Key {id} was already revoked at {}.", time(at));
        return Ok(());
    }
    let record = store.revoke(id)?;
    println!(
        "Revoked key {id} ({}, {}) at {}; a running server stops accepting it within about a second.",
        record.role,
        record.name.as_deref().unwrap_or("no name"),
        record.revoked_at.map(time).unwrap_or_default(),
    );
    Ok(())
}

fn records_table(records: &[KeyRecord], with_revoked: bool) -> String {
    let mut header = vec!["id", "name", "role", "customer", "portfolios", "created"];
    if with_revoked {
        header.push("revoked");
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let mut row = vec![
                r.id.to_string(),
                clip(r.name.as_deref().unwrap_or("-"), 32),
                r.role.to_string(),
                r.customer.clone().unwrap_or_else(|| "-".into()),
                clip(&r.portfolios.to_string(), 40),
                time(r.created_at),
            ];
            if with_revoked {
                row.push(r.revoked_at.map_or_else(|| "-".into(), time));
            }
            row
        })
        .collect();
    table(&header, &rows)
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
