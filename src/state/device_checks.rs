//! The device's readiness checks (offline start, encryption engine, storage) and how each reads to a person.

/// One thing the phone must be able to do before Huddle can be trusted on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// The service worker holds the app, so it opens without a connection.
    OfflineStart,
    /// The crypto worker has loaded and answers.
    Encryption,
    /// IndexedDB opens and keeps what the app writes.
    Storage,
}

impl CheckKind {
    pub const ALL: [CheckKind; 3] = [
        CheckKind::OfflineStart,
        CheckKind::Encryption,
        CheckKind::Storage,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CheckKind::OfflineStart => "Opens without a connection",
            CheckKind::Encryption => "End-to-end encryption",
            CheckKind::Storage => "Storage on this phone",
        }
    }

    fn ready_detail(self) -> &'static str {
        match self {
            CheckKind::OfflineStart => "Ready: Huddle will open even with no signal.",
            CheckKind::Encryption => "Ready: messages are encrypted with AES-256.",
            CheckKind::Storage => "Ready: Huddle can keep your conversations on this phone.",
        }
    }
}

/// Where a check has got to. A failure carries the sentence to show.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CheckState {
    Pending,
    Ready,
    Failed(String),
}

impl CheckState {
    /// The CSS modifier of the list item (`check-list__item--ready`).
    pub fn css_modifier(&self) -> &'static str {
        match self {
            CheckState::Pending => "pending",
            CheckState::Ready => "ready",
            CheckState::Failed(_) => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCheck {
    pub kind: CheckKind,
    pub state: CheckState,
}

impl DeviceCheck {
    /// The sentence under the check's label.
    pub fn detail(&self) -> String {
        match &self.state {
            CheckState::Pending => "Checking…".to_owned(),
            CheckState::Ready => self.kind.ready_detail().to_owned(),
            CheckState::Failed(reason) => reason.clone(),
        }
    }
}

/// Every check, in display order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceChecks {
    checks: Vec<DeviceCheck>,
}

impl Default for DeviceChecks {
    fn default() -> Self {
        Self {
            checks: CheckKind::ALL
                .iter()
                .map(|&kind| DeviceCheck {
                    kind,
                    state: CheckState::Pending,
                })
                .collect(),
        }
    }
}

impl DeviceChecks {
    pub fn set(&mut self, kind: CheckKind, state: CheckState) {
        if let Some(check) = self.checks.iter_mut().find(|c| c.kind == kind) {
            check.state = state;
        }
    }

    pub fn checks(&self) -> &[DeviceCheck] {
        &self.checks
    }

    pub fn all_ready(&self) -> bool {
        self.checks.iter().all(|c| c.state == CheckState::Ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_start_pending_and_read_as_plain_english() {
        let mut checks = DeviceChecks::default();
        assert_eq!(checks.checks().len(), 3);
        assert!(checks.checks().iter().all(|c| c.detail() == "Checking…"));
        assert!(!checks.all_ready());

        checks.set(CheckKind::OfflineStart, CheckState::Ready);
        checks.set(
            CheckKind::Storage,
            CheckState::Failed("This browser is not keeping data. Leave private browsing.".into()),
        );
        let details: Vec<String> = checks.checks().iter().map(DeviceCheck::detail).collect();
        assert_eq!(
            details,
            [
                "Ready: Huddle will open even with no signal.",
                "Checking…",
                "This browser is not keeping data. Leave private browsing.",
            ]
        );
        assert!(!checks.all_ready());

        checks.set(CheckKind::Encryption, CheckState::Ready);
        checks.set(CheckKind::Storage, CheckState::Ready);
        assert!(checks.all_ready());
    }
}
