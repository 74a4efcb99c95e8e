//! What the server knows of a device, as sessions, rows, trusted devices and security events
//! all send it: the details read from its user agent and the location read from its IP, both
//! marked approximate whenever anything is known.

use active_sessions::v1 as pb;

use super::enums::number;
use crate::enrich::{DeviceDetails, GeoLocation};

impl From<&DeviceDetails> for pb::DeviceInfo {
    fn from(device: &DeviceDetails) -> Self {
        let description = device.description();
        Self {
            browser: device.browser.clone().unwrap_or_default(),
            browser_version: device.browser_version.clone().unwrap_or_default(),
            os: device.os.clone().unwrap_or_default(),
            os_version: device.os_version.clone().unwrap_or_default(),
            device_type: number(device.device_type),
            approximate: description.is_some(),
            description: description.unwrap_or_default(),
        }
    }
}

impl From<&GeoLocation> for pb::Location {
    fn from(location: &GeoLocation) -> Self {
        Self {
            city: location.city.clone().unwrap_or_default(),
            region: location.region.clone().unwrap_or_default(),
            country_code: location.country_code.clone().unwrap_or_default(),
            country: location.country.clone().unwrap_or_default(),
            approximate: *location != GeoLocation::default(),
        }
    }
}
