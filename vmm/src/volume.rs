//! `--volume HOST_DIR:GUEST_DIR[:ro]`: the flag's syntax, and opening the host directories
//! for the host file-system device ([`crate::devices::hostfs`]).

use std::path::{Path, PathBuf};

use crate::devices::hostfs::host::{HostFs, Volume};

/// Most `--volume` flags one VM takes.
pub const MAX_VOLUMES: usize = 16;

/// One `--volume` flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeSpec {
    /// The host directory.
    pub host: PathBuf,
    /// Where the guest sees it: absolute, normalised (no `.`, `..` or repeated `/`).
    pub guest: String,
    /// Shared read-only (`:ro`).
    pub read_only: bool,
}

/// Errors opening the host directories.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The host directory cannot be opened.
    #[error("Cannot share --volume host directory '{}'", .path.display())]
    Open {
        /// The host directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Too many volumes.
    #[error("At most {MAX_VOLUMES} --volume flags are supported")]
    TooMany,
}

impl VolumeSpec {
    /// Parses `HOST_DIR:GUEST_DIR`, `HOST_DIR:GUEST_DIR:ro` or `...:rw` (clap's value
    /// parser). The host directory may itself contain `:` (the guest part is after the
    /// last one).
    pub fn parse(value: &str) -> Result<VolumeSpec, String> {
        let (rest, read_only) = if let Some(r) = value.strip_suffix(":ro") {
            (r, true)
        } else if let Some(r) = value.strip_suffix(":rw") {
            (r, false)
        } else {
            (value, false)
        };
        let Some((host, guest)) = rest.rsplit_once(':') else {
            return Err(format!(
                "'{value}' is not HOST_DIR:GUEST_DIR[:ro] (e.g. --volume ./data:/data)"
            ));
        };
        if host.is_empty() {
            return Err(format!("'{value}': HOST_DIR is empty"));
        }
        if !guest.starts_with('/') {
            return Err(format!(
                "'{value}': GUEST_DIR '{guest}' must be an absolute path (e.g. /data)"
            ));
        }
        let mut parts: Vec<&str> = Vec::new();
        for c in guest.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if c == ".." {
                return Err(format!("'{value}': GUEST_DIR must not contain '..'"));
            }
            if c.len() > 255 {
                return Err(format!(
                    "'{value}': a GUEST_DIR component is longer than 255 bytes"
                ));
            }
            parts.push(c);
        }
        if parts.is_empty() {
            return Err(format!("'{value}': GUEST_DIR cannot be / (the root)"));
        }
        if guest.contains('\0') || host.contains('\0') {
            return Err(format!("'{value}' contains a NUL byte"));
        }
        Ok(VolumeSpec {
            host: PathBuf::from(host),
            guest: format!("/{}", parts.join("/")),
            read_only,
        })
    }
}

/// Opens every volume's host directory: the device's state.
pub fn open_all(specs: &[VolumeSpec]) -> Result<HostFs, VolumeError> {
    if specs.len() > MAX_VOLUMES {
        return Err(VolumeError::TooMany);
    }
    let volumes = specs
        .iter()
        .map(|s| {
            Volume::open(&s.host, &s.guest, s.read_only).map_err(|source| VolumeError::Open {
                path: s.host.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HostFs::new(volumes))
}

/// Where the guest sees host directory `host` (absolute, canonical) through `volumes`:
/// the volume whose host directory holds it most closely, with the rest of the path
/// appended. `None` if no volume shares it (or a host path is not UTF-8).
pub fn guest_path_of(volumes: &[VolumeSpec], host: &Path) -> Option<String> {
    volumes
        .iter()
        .filter_map(|v| {
            let root = std::fs::canonicalize(&v.host).ok()?;
            let rest = host.strip_prefix(&root).ok()?;
            Some((root.components().count(), v, rest.to_str()?.to_string()))
        })
        .max_by_key(|(depth, _, _)| *depth)
        .map(|(_, v, rest)| {
            let guest = v.guest.trim_end_matches('/');
            match rest.is_empty() {
                true if guest.is_empty() => "/".to_string(),
                true => guest.to_string(),
                false => format!("{guest}/{rest}"),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let v = VolumeSpec::parse("./data:/data").unwrap();
        assert_eq!(v.host, PathBuf::from("./data"));
        assert_eq!((v.guest.as_str(), v.read_only), ("/data", false));
        let v = VolumeSpec::parse("/a:b/c:/mnt//x/./y/:ro").unwrap();
        assert_eq!(v.host, PathBuf::from("/a:b/c"));
        assert_eq!((v.guest.as_str(), v.read_only), ("/mnt/x/y", true));
        assert!(!VolumeSpec::parse("d:/x:rw").unwrap().read_only);
    }

    #[test]
    fn refuses_bad_values_with_a_reason() {
        for (bad, why) in [
            ("data", "not HOST_DIR:GUEST_DIR"),
            (":/x", "HOST_DIR is empty"),
            ("d:x", "must be an absolute path"),
            ("d:", "must be an absolute path"),
            ("d:/", "cannot be /"),
            ("d:/a/../b", "'..'"),
        ] {
            let err = VolumeSpec::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn a_missing_host_directory_is_named() {
        let spec = VolumeSpec::parse("/nonexistent/astra-vol:/v").unwrap();
        let chain = |e: VolumeError| format!("{:#}", anyhow::Error::new(e));
        let err = chain(open_all(&[spec]).err().unwrap());
        assert!(
            err.contains("'/nonexistent/astra-vol'") && err.contains("No such file"),
            "{err}"
        );
        let file = VolumeSpec::parse("/proc/self/status:/v").unwrap();
        let err = chain(open_all(&[file]).err().unwrap());
        assert!(err.contains("Not a directory"), "{err}");
    }

    #[test]
    fn a_host_directory_maps_through_the_closest_volume() {
        let base = std::env::temp_dir().join(format!("astra-vol-map-{}", std::process::id()));
        let inner = base.join("crate/src");
        std::fs::create_dir_all(&inner).unwrap();
        let base = std::fs::canonicalize(&base).unwrap();
        let spec = |host: &Path, guest: &str| VolumeSpec {
            host: host.to_path_buf(),
            guest: guest.into(),
            read_only: false,
        };
        let vols = [spec(&base, "/work"), spec(&base.join("crate"), "/crate")];
        assert_eq!(
            guest_path_of(&vols, &base.join("crate/src")).as_deref(),
            Some("/crate/src")
        );
        assert_eq!(guest_path_of(&vols, &base).as_deref(), Some("/work"));
        assert_eq!(
            guest_path_of(&vols[..1], &base.join("crate")).as_deref(),
            Some("/work/crate")
        );
        assert_eq!(guest_path_of(&vols, Path::new("/")), None);
        assert_eq!(
            guest_path_of(&[spec(&base, "/")], &base.join("crate")).as_deref(),
            Some("/crate")
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
