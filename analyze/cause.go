package analyze

// Causes of each finding kind (Finding.Cause). The README's findings
// table gives each one's remedy.
const (
	// rst_storm
	CauseRapidReset    = "rapid_reset"    // the client resets streams before any response, at a rate beyond normal use (CVE-2023-44487)
	CauseClientCancel  = "client_cancel"  // the client resets streams after waiting or after the response started: cancellations, deadlines
	CauseRefusedStream = "refused_stream" // the server refuses streams (REFUSED_STREAM) beyond SETTINGS_MAX_CONCURRENT_STREAMS
	CauseServerReset   = "server_reset"   // the server resets streams with other error codes

	// window_stall
	CauseH2StreamWindow     = "h2_stream_window"     // an HTTP/2 stream's flow-control window at zero
	CauseH2ConnectionWindow = "h2_connection_window" // the HTTP/2 connection's flow-control window at zero
	CauseTCPZeroWindow      = "tcp_zero_window"      // a TCP receive window at zero

	// goaway
	CauseGraceful       = "graceful"        // a server drains the connection: nothing lost
	CauseStreamsRefused = "streams_refused" // NO_ERROR, but streams above last-stream-id were cut
	CauseGoAwayError    = "error"           // a connection error code
	CauseTooManyPings   = "too_many_pings"  // ENHANCE_YOUR_CALM for pings (gRPC keepalive enforcement)
	CauseClientGoAway   = "client"          // the client sent it

	// reconnect_churn
	CauseClientConnectionClose     = "client_connection_close"      // the client sends Connection: close
	CauseServerConnectionClose     = "server_connection_close"      // the server sends Connection: close
	CauseClientClosesAfterResponse = "client_closes_after_response" // no one asked; the client closes after each response
	CauseBodyNotDrained            = "body_not_drained"             // the client resets, its response unread
	CauseConnectionsLeaked         = "connections_leaked"           // connections left open while new ones are dialled
	CauseServerIdleTimeout         = "server_idle_timeout"          // the server closes each connection idle between requests

	// resumption_failure
	CauseTicketsDisabled   = "tickets_disabled"    // no tickets or cacheable session ids issued; offers ignored
	CauseTicketKeyMismatch = "ticket_key_mismatch" // stateless tickets issued, none accepted: rotated or unshared keys
	CauseSessionNotCached  = "session_not_cached"  // session ids or stateful tickets the server's cache does not hold
	CauseTicketExpired     = "ticket_expired"      // offered after the ticket's lifetime
	CauseClientNotOffering = "client_not_offering" // tickets issued, but the client reconnects without offering one
	CauseResumptionUnknown = "unknown"             // TLS 1.3 not decrypted: tickets invisible

	// keepalive_mismatch
	CauseIdleClose = "idle_close" // the server closes idle connections first; nothing was lost
	CauseReuseRace = "reuse_race" // requests crossed the server's close

	// syn_retransmit
	CauseRefused    = "refused"    // the server answered the SYN with RST
	CauseUnanswered = "unanswered" // nothing answered the SYNs
	CauseRetried    = "retried"    // the connection was made after retransmitted SYNs

	// connection_lost
	CauseServerAbort = "server_abort" // the server closed (FIN or RST) with requests in flight, no GOAWAY
	CauseClientAbort = "client_abort" // the client closed with requests in flight

	// handshake_latency
	CauseTCPHandshake = "tcp" // SYN to SYN-ACK
	CauseTLSHandshake = "tls" // ClientHello to the server's Finished
)

// Causes lists the causes each kind's findings give.
var Causes = map[string][]string{
	KindRSTStorm:          {CauseRapidReset, CauseClientCancel, CauseRefusedStream, CauseServerReset},
	KindWindowStall:       {CauseH2StreamWindow, CauseH2ConnectionWindow, CauseTCPZeroWindow},
	KindGoAway:            {CauseGraceful, CauseStreamsRefused, CauseGoAwayError, CauseTooManyPings, CauseClientGoAway},
	KindSYNRetransmit:     {CauseRefused, CauseUnanswered, CauseRetried},
	KindKeepaliveMismatch: {CauseIdleClose, CauseReuseRace},
	KindResumptionFailure: {CauseTicketsDisabled, CauseTicketKeyMismatch, CauseSessionNotCached, CauseTicketExpired, CauseResumptionUnknown, CauseClientNotOffering},
	KindHandshakeLatency:  {CauseTCPHandshake, CauseTLSHandshake},
	KindConnectionLost:    {CauseServerAbort, CauseClientAbort},
	KindReconnectChurn:    {CauseClientConnectionClose, CauseServerConnectionClose, CauseClientClosesAfterResponse, CauseBodyNotDrained, CauseConnectionsLeaked, CauseServerIdleTimeout},
	KindRequestErrors:     {CauseUnavailable, CauseOverload, CauseDeadline, CauseServerError, CauseClientError},
	KindPacketLoss:        {CauseTimeouts, CauseFastRetransmit, CauseCaptureLoss},
	KindProtocolAbuse:     {CauseSYNFlood, CausePingFlood, CauseSettingsFlood, CauseWindowUpdateFlood, CauseContinuationFlood, CauseHPACKBomb, CauseEmptyFramesFlood},
}
