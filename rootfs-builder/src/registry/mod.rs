//! Registries: the OCI distribution API as a source of images (pull) and a destination (push).
//!
//! `reference` (names), `conf` (registries.conf: short names, mirrors, insecure, blocked),
//! `auth` (auth files, credential helpers, login/logout), `tls` (roots, certs.d), `client` (HTTP:
//! authentication, retries, redirects, limits), `fetch` (manifests and blobs for a pull).
pub mod auth;
pub mod base64;
pub mod client;
pub mod conf;
pub mod fetch;
pub mod reference;
pub mod tls;
