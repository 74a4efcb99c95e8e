//! What the server knows of a device, as sessions, rows, trusted devices and security events
//! all send it: the details read from its user agent and the location read from its IP, both
//! marked approximate whenever anything is known.

use active_sessions::v1 as pb;

use super::enums::number;
use crate::enrich::{DeviceDetails, GeoLocation};

impl From<DeviceDetails> for pb::DeviceInfo {
    fn from(device: DeviceDetails) -> Self {
        let description = device.description();
        Self {
            browser: device.browser.unwrap_or_default(),
            browser_version: device.browser_version.unwrap_or_default(),
            os: device.os.unwrap_or_default(),
            os_version: device.os_version.unwrap_or_default(),
            device_type: number(device.device_type),
            approximate: description.is_some(),
            description: description.unwrap_or_default(),
        }
    }
}

impl From<&DeviceDetails> for pb::DeviceInfo {
    fn from(device: &DeviceDetails) -> Self {
        device.clone().into()
    }
}

impl From<GeoLocation> for pb::Location {
    fn from(location: GeoLocation) -> Self {
        let approximate = location != GeoLocation::default();
        Self {
            city: location.city.unwrap_or_default(),
            region: location.region.unwrap_or_default(),
            country_code: location.country_code.unwrap_or_default(),
            country: location.country.unwrap_or_default(),
            approximate,
        }
    }
}

impl From<&GeoLocation> for pb::Location {
    fn from(location: &GeoLocation) -> Self {
        location.clone().into()
    }
}
