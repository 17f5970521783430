//! The IO price feed: a signed report of what one IO is worth in IOSD.
//!
//! IOSD is minted only by burning IO at this price (Helium's Data Credit
//! rule), so the coordinator takes a price only from the oracle key named
//! in its configuration, only newer than the last one, and only while it
//! is fresh. A report is signed over its canonical encoding
//! (`assay/oracle/v1`, [`PriceReport::signing_bytes`]), a frozen format.
//!
//! # Example
//!
//! ```
//! use assay_protocol::NodeKey;
//! use assay_protocol::oracle::PriceReport;
//!
//! let oracle = NodeKey::from_seed([9; 32]);
//! let report = PriceReport { round: 1, micro_iosd_per_io: 1_500_000, at_ms: 1_000 };
//! let signature = report.sign(&oracle);
//! assert!(report.verify(&oracle.id(), &signature).is_ok());
//! let forged = PriceReport { micro_iosd_per_io: 9_000_000, ..report };
//! assert!(forged.verify(&oracle.id(), &signature).is_err());
//! ```

use serde::{Deserialize, Serialize};

use crate::canonical::Encoder;
use crate::{Error, NodeId, NodeKey, Signature};

/// One price report of the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceReport {
    /// Strictly increasing per oracle.
    pub round: u64,
    /// µIOSD per whole IO (1,000,000 µIO).
    pub micro_iosd_per_io: u64,
    /// When the oracle observed the price, Unix ms.
    pub at_ms: u64,
}

impl PriceReport {
    /// The bytes the oracle signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new("assay/oracle/v1");
        e.u64(self.round)
            .u64(self.micro_iosd_per_io)
            .u64(self.at_ms);
        e.finish()
    }

    /// Signs the report with the oracle's key.
    pub fn sign(&self, key: &NodeKey) -> Signature {
        key.sign(&self.signing_bytes())
    }

    /// Checks that `oracle` signed this report.
    ///
    /// # Errors
    ///
    /// [`Error::BadSignature`] when it did not.
    pub fn verify(&self, oracle: &NodeId, signature: &Signature) -> Result<(), Error> {
        oracle.verify(&self.signing_bytes(), signature)
    }
}
