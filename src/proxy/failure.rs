//! What a failed request becomes: the answer the client is told (502 / 503 / 504 / 4xx) and the
//! termination state the timing log records, both from pingora's error kind and source.

use crate::accesslog::Termination;
use crate::respond::{self, LocalAnswer};
use crate::telemetry::Misbehaviour;
use pingora::{Error, ErrorSource, ErrorType};

/// Raised by `upstream_peer` when the pool has no usable server (marked upstream so that a
/// stale cached copy may be served in its place).
pub const NO_USABLE_SERVER: ErrorType = ErrorType::Custom("no usable server");
/// Raised when every usable server was tried and none could be connected to.
pub const ALL_SERVERS_FAILED: ErrorType = ErrorType::Custom("no server answered");
/// Raised when a hook finds the request in a state that cannot happen (a bug, not input).
pub const IMPOSSIBLE: ErrorType = ErrorType::Custom("impossible request state");

/// Raised by an access rule that drops: the request gets no answer.
pub const DROPPED: ErrorType = ErrorType::Custom("dropped by an access rule or a rate limit");

/// The access log's termination state for a failed request.
pub fn termination(e: &Error) -> Termination {
    use ErrorType::*;
    let etype = e.etype();
    if *etype == NO_USABLE_SERVER {
        return Termination::NoServer;
    }
    if *etype == ALL_SERVERS_FAILED {
        return Termination::ConnectError;
    }
    if matches!(client_misbehaviour(e), Some(Misbehaviour::SendTimeout)) {
        return Termination::ClientTimeout;
    }
    match (e.esource(), etype) {
        (ErrorSource::Downstream, _) => Termination::ClientAbort,
        (
            ErrorSource::Upstream,
            ConnectTimedout | ConnectRefused | ConnectError | ConnectNoRoute,
        ) => Termination::ConnectError,
        (ErrorSource::Upstream, ReadTimedout | WriteTimedout) => Termination::ServerTimeout,
        (ErrorSource::Upstream, _) | (_, HTTPStatus(_)) => Termination::ServerError,
        _ => Termination::InternalError,
    }
}

/// The client misbehaviour a failed request shows, if its failure was the client's: it took
/// none of the response for `timeouts.client_send`, or it left (closed, reset its stream)
/// before the answer was written.
pub fn client_misbehaviour(e: &Error) -> Option<Misbehaviour> {
    match (e.esource(), e.etype()) {
        // The client session's own write timeout is raised without a side.
        (ErrorSource::Downstream | ErrorSource::Unset, ErrorType::WriteTimedout) => {
            return Some(Misbehaviour::SendTimeout)
        }
        (ErrorSource::Downstream, _) => {}
        _ => return None,
    }
    match e.etype() {
        ErrorType::ConnectionClosed
        | ErrorType::ReadError
        | ErrorType::WriteError
        | ErrorType::H2Error => Some(Misbehaviour::Cancelled),
        _ => None,
    }
}

/// What the client is told for a failed request; None when the client is gone.
pub fn answer(e: &Error) -> Option<LocalAnswer> {
    use ErrorType::*;
    let etype = e.etype();
    if *etype == DROPPED {
        return None;
    }
    if *etype == NO_USABLE_SERVER {
        return Some(respond::NO_SERVER);
    }
    if *etype == ALL_SERVERS_FAILED {
        return Some(respond::BAD_GATEWAY);
    }
    match (e.esource(), etype) {
        (_, HTTPStatus(code)) => Some(match *code {
            413 => respond::BODY_TOO_LARGE,
            400..=499 => respond::BAD_REQUEST,
            504 => respond::GATEWAY_TIMEOUT,
            503 => respond::NO_SERVER,
            _ => respond::BAD_GATEWAY,
        }),
        (ErrorSource::Upstream, ConnectTimedout | ReadTimedout | WriteTimedout) => {
            Some(respond::GATEWAY_TIMEOUT)
        }
        (ErrorSource::Upstream, _) => Some(respond::BAD_GATEWAY),
        (ErrorSource::Downstream, WriteError | ReadError | ConnectionClosed) => None,
        (ErrorSource::Downstream, _) => Some(respond::BAD_REQUEST),
        _ => Some(respond::INTERNAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_answers_and_terminations() {
        let no_server = Error::explain(NO_USABLE_SERVER, "pool web").into_up();
        assert_eq!(answer(&no_server), Some(respond::NO_SERVER));
        assert_eq!(termination(&no_server), Termination::NoServer);
        let timeout = Error::new(ErrorType::ReadTimedout).into_up();
        assert_eq!(answer(&timeout), Some(respond::GATEWAY_TIMEOUT));
        assert_eq!(termination(&timeout), Termination::ServerTimeout);
        let gone = Error::new(ErrorType::ConnectionClosed).into_down();
        assert_eq!(answer(&gone), None);
        assert_eq!(termination(&gone), Termination::ClientAbort);
        let bug = Error::explain(IMPOSSIBLE, "no route");
        assert_eq!(answer(&bug), Some(respond::INTERNAL));
        assert_eq!(termination(&bug), Termination::InternalError);
    }
}
