//! Enrichment of a sign-in's raw request metadata into display details: the User-Agent string
//! becomes a browser, an operating system and a device type ([`parse_user_agent`]), and the IP
//! address becomes an approximate city, region and country from a MaxMind-format database
//! ([`GeoIp`]). Both are best effort: unknown input yields empty details, never an error.

pub mod geoip;
pub mod user_agent;

pub use geoip::{GeoIp, GeoIpError, GeoLocation};
pub use user_agent::{DeviceDetails, DeviceType, parse_user_agent};
