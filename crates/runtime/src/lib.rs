//! Seashell's environment runtime: the local OCI backend.
//!
//! Every environment is one container run by an existing OCI runtime (runc
//! by default, crun on cgroup v2-only hosts) from a bundle whose
//! `config.json` is generated with the `oci-spec` crate. The crate owns the
//! host side of an environment: the id-shifted image, the root overlay whose
//! upper layer is thrown away on stop (on a size-limited root disk of its
//! own), the ext4 home volume, cgroup limits, the network link with its
//! firewall rules, and cleanup after crashes. See `docs/runtime.md` for the
//! isolation model.
//!
//! ```no_run
//! use seashell_runtime::*;
//! # fn main() -> Result<()> {
//! let rt = Runtime::new(RuntimeConfig::default())?;
//! let image = rt.import_image("minimal", "/tmp/rootfs".as_ref(), IdMap::default())?;
//! let id = EnvironmentId::new("env-1")?;
//! rt.create(&EnvironmentSpec {
//!     id: id.clone(),
//!     hostname: "env-1".into(),
//!     image,
//!     id_map: IdMap::default(),
//!     limits: Limits::default(),
//!     home: Some(HomeKey::new("123456789012", "alice", "eu-west-1")),
//!     init: vec!["/bin/sleep".into(), "infinity".into()],
//!     ro_binds: vec![],
//! })?;
//! rt.start(&id)?;
//! rt.stop(&id)?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod agent;
pub mod agent_client;
pub mod agent_hub;
mod agent_socket;
mod cmd;
mod environment;
mod error;
pub mod home;
pub mod host;
pub mod image;
mod mounts;
pub mod network;
mod reconcile;
pub mod rootdisk;
pub mod rootfs;
mod runc;
pub mod seccomp;
pub mod spec;

pub use environment::{
    EnvironmentId, EnvironmentSpec, EnvironmentStatus, ExecUser, Runtime, RuntimeConfig,
    DEFAULT_MIN_FREE_BYTES,
};
pub use error::{Error, Result};
pub use home::HomeKey;
pub use host::{CgroupLayout, HostReport, OciRuntimeKind};
pub use network::{ApiForward, NetworkConfig, API_ADDRESS};
pub use reconcile::ReconcileReport;
pub use rootfs::PreparedImage;
pub use runc::ExecOutput;
pub use spec::{IdMap, Limits};
