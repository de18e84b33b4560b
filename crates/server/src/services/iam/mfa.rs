//! Virtual MFA devices: create, enable with two consecutive codes, list,
//! deactivate, delete. The codes are RFC 6238 TOTP (see `crate::mfa`).

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};

use super::params;
use super::{internal, invalid_input, no_such_entity, no_such_user, Ctx, Reply};
use crate::error::ApiError;
use crate::mfa;
use crate::store::{now_ms, StoreError};

fn iso(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `CreateVirtualMFADevice`: a new device and its secret, shown once.
pub async fn create(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let name = params::required(ctx.req, "VirtualMFADeviceName", "virtualMFADeviceName")?;
    params::check_name(name, "virtualMFADeviceName", 226)?;
    let path = ctx.req.param("Path").unwrap_or("/");
    if !path.starts_with('/') || !path.ends_with('/') {
        return Err(invalid_input("The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters."));
    }
    let serial = ctx.arn("mfa", path, name);
    ctx.authorize(&serial).await?;
    let secret = mfa::new_secret();
    ctx.store()
        .create_mfa_device(ctx.account(), &serial, &secret)
        .await
        .map_err(|e| match e {
            StoreError::AlreadyExists(_) => ApiError::new(
                http::StatusCode::CONFLICT,
                "EntityAlreadyExists",
                format!("MFADevice entity at the same path and name already exists: {serial}"),
            ),
            other => internal(other),
        })?;
    // Base32StringSeed is a blob: the base32 text, base64-encoded on the wire.
    let seed = base64::engine::general_purpose::STANDARD.encode(secret.as_bytes());
    Ok(ctx.reply(|w| {
        w.open("VirtualMFADevice", None)
            .element("SerialNumber", &serial)
            .element("Base32StringSeed", &seed)
            .close("VirtualMFADevice");
    }))
}

/// `EnableMFADevice`: binds a device to a user once two consecutive codes
/// prove the user holds it.
pub async fn enable(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let (arn, user) = ctx.named_user().await?;
    let serial = params::required(ctx.req, "SerialNumber", "serialNumber")?;
    let code1 = params::required(ctx.req, "AuthenticationCode1", "authenticationCode1")?;
    let code2 = params::required(ctx.req, "AuthenticationCode2", "authenticationCode2")?;
    ctx.authorize(&arn).await?;
    let user = user.ok_or_else(|| no_such_user(ctx.req.param("UserName").unwrap_or_default()))?;
    let secret = ctx
        .store()
        .pending_mfa_secret(serial)
        .await
        .map_err(internal)?
        .ok_or_else(|| no_such_entity(format!("VirtualMFADevice with serial number {serial} doesn't exist or is already assigned.")))?;
    let now = u64::try_from(now_ms() / 1000).unwrap_or_default();
    let invalid = || invalid_input("Authentication code for device is not valid.");
    // The two codes must be consecutive, as AWS requires: the second one
    // either now or one step ahead of the first.
    let step1 = (0..=2u64)
        .filter_map(|back| now.checked_sub(back * 30))
        .find_map(|t| (mfa::code_at(&secret, t).as_deref() == Some(code1)).then_some(t / 30))
        .ok_or_else(invalid)?;
    let step2 = step1 + 1;
    if mfa::code_at(&secret, step2 * 30).as_deref() != Some(code2) {
        return Err(invalid());
    }
    let last = i64::try_from(step2).unwrap_or(i64::MAX);
    if !ctx
        .store()
        .enable_mfa_device(serial, &user.user_id, last)
        .await
        .map_err(internal)?
    {
        return Err(no_such_entity(format!(
            "VirtualMFADevice with serial number {serial} doesn't exist or is already assigned."
        )));
    }
    Ok(ctx.empty())
}

/// `ListMFADevices`: the user's enabled devices (the caller's without
/// `UserName`).
pub async fn list(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let page = params::page(ctx.req)?;
    let (arn, user) = ctx.user_or_caller().await?;
    ctx.authorize(&arn).await?;
    let user = user.ok_or_else(|| no_such_user(ctx.req.param("UserName").unwrap_or_default()))?;
    let devices = ctx
        .store()
        .user_mfa_devices(&user.user_id)
        .await
        .map_err(internal)?;
    let paged = page.apply(devices, |(serial, _)| serial.clone());
    Ok(ctx.reply(|w| {
        w.open("MFADevices", None);
        for (serial, enabled) in &paged.items {
            w.open("member", None)
                .element("UserName", &user.name)
                .element("SerialNumber", serial)
                .element("EnableDate", &iso(*enabled))
                .close("member");
        }
        w.close("MFADevices");
        super::shapes::truncation(w, paged.marker.as_deref());
    }))
}

/// `DeactivateMFADevice`: detaches the device from the user.
pub async fn deactivate(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let (arn, user) = ctx.user_or_caller().await?;
    let serial = params::required(ctx.req, "SerialNumber", "serialNumber")?;
    ctx.authorize(&arn).await?;
    let user = user.ok_or_else(|| no_such_user(ctx.req.param("UserName").unwrap_or_default()))?;
    if !ctx
        .store()
        .deactivate_mfa_device(serial, &user.user_id)
        .await
        .map_err(internal)?
    {
        return Err(no_such_entity(format!(
            "MFA Device with serial number {serial} does not exist."
        )));
    }
    Ok(ctx.empty())
}

/// `DeleteVirtualMFADevice`: removes a device no user has.
pub async fn delete(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let serial = params::required(ctx.req, "SerialNumber", "serialNumber")?;
    ctx.authorize(serial).await?;
    match ctx
        .store()
        .delete_mfa_device(ctx.account(), serial)
        .await
        .map_err(internal)?
    {
        Some(true) => Ok(ctx.empty()),
        Some(false) => Err(ApiError::new(
            http::StatusCode::CONFLICT,
            "DeleteConflict",
            "MFA VirtualDevice in use. Must deactivate first.",
        )),
        None => Err(no_such_entity(format!(
            "VirtualMFADevice with serial number {serial} doesn't exist."
        ))),
    }
}
