//! Error helpers shared by every layer: the boxed error adapters keep as a source, the
//! one-message error types ([`message_error!`]), one log line from an error chain, the text
//! of a caught panic.

/// An adapter's own error, kept as the source of ours (SDK errors, port failures).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Declares a one-message error type: `pub struct Name(pub String)` with its doc, `Display`
/// as the message, and `From<Name> for String` for the compilers that collect messages.
#[macro_export]
macro_rules! message_error {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("{0}")]
        pub struct $name(pub String);

        impl From<$name> for String {
            fn from(e: $name) -> Self {
                e.0
            }
        }
    };
}

/// The error and its sources, joined with `: ` (for one log line).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The message of a caught panic (`panic!` with a literal or a formatted string).
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
