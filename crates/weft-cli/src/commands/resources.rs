//! `weft init`, `weft org add`, `weft person add`, `weft key rotate|revoke`: the chain and who acts on it.

use super::*;

pub fn init(ctx: &Globals, chain_name: &str, time_window_secs: u64) -> Result<()> {
    let (home, ledger) = Home::init(&ctx.home, chain_name, time_window_secs)?;
    let head = ledger.head();
    ctx.out.emit(
        json!({
            "home": home.dir.display().to_string(),
            "chain_name": chain_name,
            "chain_id": ledger.chain_id().to_hex(),
            "genesis_hash": head.header.hash().to_hex(),
            "producer": head.header.producer.to_hex(),
        }),
        || {
            format!(
                "initialised ledger {:?} in {}\n  chain id     {}\n  genesis hash {}\n  producer key {}",
                chain_name,
                home.dir.display(),
                ledger.chain_id(),
                head.header.hash(),
                head.header.producer
            )
        },
    );
    Ok(())
}

fn register(
    ctx: &Globals,
    home: &Home,
    chain: &mut dyn Chain,
    signer: Signer,
    key: &SigningKey,
    resource: Resource,
) -> Result<ResourceId> {
    let (id, position) = register_resource(home, chain, signer, key, resource, |_| Ok(()))?;
    let key_path = home.resource_key_path(&id);
    ctx.out.emit(json!({"id": id.to_hex(), "tx_id": id.to_hex(), "height": position.height, "key_file": key_path.display().to_string()}), || {
        format!("registered {id}\n  key file {}", key_path.display())
    });
    Ok(id)
}

#[derive(Debug, Clone, Default)]
pub struct OrgArgs {
    pub name: String,
    pub country: String,
    pub town: String,
    pub street: Option<String>,
    pub street_number: Option<String>,
    pub postal_code: Option<String>,
    pub region: Option<String>,
    pub postal_box: Option<String>,
    pub website: Option<String>,
}

pub fn org_add(ctx: &Globals, args: OrgArgs) -> Result<ResourceId> {
    let home = Home::open(&ctx.home)?;
    let mut chain = crate::chain::open(ctx)?;
    let organization = Organization {
        name: Some(args.name),
        website: args.website,
        address: Address {
            street: args.street,
            street_number: args.street_number,
            town: args.town,
            region: args.region,
            postal_code: args.postal_code,
            postal_box: args.postal_box,
            country: args.country,
        },
    };
    let authority = home.authority_key()?;
    register(
        ctx,
        &home,
        chain.as_mut(),
        Signer::Authority,
        &authority,
        Resource::Organization(organization),
    )
}

pub fn person_add(
    ctx: &Globals,
    org: &str,
    first: Option<String>,
    last: Option<String>,
    email: Option<String>,
) -> Result<ResourceId> {
    let home = Home::open(&ctx.home)?;
    let mut chain = crate::chain::open(ctx)?;
    let organization = chain.resolve(org, "--org")?;
    let key = home.resource_key(&organization)?;
    let person = PersonInOrganization {
        first_name: first,
        last_name: last,
        email,
        belongs_to: organization,
    };
    register(
        ctx,
        &home,
        chain.as_mut(),
        Signer::Resource(organization),
        &key,
        Resource::PersonInOrganization(person),
    )
}

#[derive(Debug, Clone, Default)]
pub struct AssetArgs {
    pub data_type: Option<String>,
    pub file_id: Option<String>,
    pub version_ids: Vec<String>,
    pub descriptions: Vec<String>,
    pub public: bool,
    pub doi: Option<String>,
    pub doi_no_redirect: Option<String>,
    pub algo: HashAlgo,
}

pub fn key_rotate(ctx: &Globals, resource: &str) -> Result<()> {
    let home = Home::open(&ctx.home)?;
    let mut chain = crate::chain::open(ctx)?;
    let resource = chain.resolve(resource, "--resource")?;
    let old_key = home.resource_key(&resource)?;
    let new_key = SigningKey::generate()?;
    let path = home.resource_key_path(&resource);
    let pending = path.with_extension("key.new");
    let _ = fs::remove_file(&pending);
    write_key(&pending, &new_key)?;
    let payload = Payload::RotateKey(RotateKey {
        resource,
        new_key: new_key.public_key(),
    });
    match chain.commit(ctx, &home, Signer::Resource(resource), &old_key, payload) {
        Ok(_) => {
            fs::rename(&pending, &path).with_context(|| {
                format!(
                    "rotated on the ledger, but cannot move {} to {}",
                    pending.display(),
                    path.display()
                )
            })?;
            Ok(())
        }
        Err(error) if certainly_refused(&error) => {
            let _ = fs::remove_file(&pending);
            Err(error)
        }
        Err(error) => Err(error.context(format!(
            "the rotation may or may not have been committed; the new key is kept in {}",
            pending.display()
        ))),
    }
}

pub fn key_revoke(ctx: &Globals, resource: &str, key: &str, signer: Option<&str>) -> Result<()> {
    let home = Home::open(&ctx.home)?;
    let mut chain = crate::chain::open(ctx)?;
    let resource = chain.resolve(resource, "--resource")?;
    let revoked = PublicKey::from_hex(key).context("--key")?;
    let (signer_id, signing_key) = match signer {
        Some(signer) => {
            let id = chain.resolve(signer, "--signer")?;
            (Signer::Resource(id), home.resource_key(&id)?)
        }
        None => (Signer::Resource(resource), home.resource_key(&resource)?),
    };
    chain.commit(
        ctx,
        &home,
        signer_id,
        &signing_key,
        Payload::RevokeKey(RevokeKey {
            resource,
            key: revoked,
        }),
    )?;
    Ok(())
}

pub(crate) use weft_node::query::format_time;
