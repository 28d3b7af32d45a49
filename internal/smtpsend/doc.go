// Package smtpsend submits mail over SMTP (RFC 5321, submission per RFC
// 6409) for one mailbox: it dials (implicit TLS on 465, STARTTLS on 587, or
// clear text to loopback only), authenticates with a token function
// (XOAUTH2, OAUTHBEARER) or a password (PLAIN, LOGIN), and sends any number
// of messages over the one connection. It is a leaf on go-smtp and
// internal/sasl and knows nothing of tickets or the outbox:
//
//	c, err := smtpsend.Dial(ctx, smtpsend.Config{Addr: "smtp.office365.com:587",
//		Username: addr, Auth: smtpsend.AuthXOAuth2, Token: tok, RefreshToken: refresh})
//	err = c.Send(ctx, addr, rcpts, raw)
//	switch smtpsend.KindOf(err) { ... }
//
// Every error of Dial and Send is an *Error whose Kind tells the caller what
// to do: retry (KindTemporary, KindThrottled), give up on the message
// (KindPermanent, KindRecipientUnknown, KindSendAsDenied), hold the mailbox
// (KindAuthFailed: re-authenticate; KindAuthDisabled, KindConfig: an
// administrator must act), or find out before doing anything
// (KindOutcomeUnknown). Kinds are decided from reply codes and enhanced
// status codes (RFC 3463), in one table (classify); the server's text is
// kept, on one line, for people to read, and is matched only for
// Microsoft's documented tokens SendAsDenied and SubmissionQuotaExceeded.
//
// Invariants:
//
//   - Clear text goes only to a loopback address, checked before any packet
//     is sent; STARTTLS that the server does not offer is an error, never a
//     silent downgrade, and nothing the server sent before the handshake is
//     read after it (RFC 3207 5).
//   - All recipients or none: one refused RCPT ends the transaction with
//     RSET before DATA, so a message never goes to a subset of its
//     recipients. After a refusal the connection stays usable; after a
//     network failure or 421 it is marked broken (Conn.Usable).
//   - KindOutcomeUnknown is reported exactly when the final "." of DATA
//     was written without error and no reply was read (RFC 5321 4.1.1.4):
//     the server may have queued the message. A failed write before that
//     point is KindTemporary: the message cannot have been accepted. The
//     caller settles an unknown outcome by looking for the Message-ID (in
//     the Sent folder, see imapsync.OpenSent) before sending again.
//   - SendWhen writes the final "." only once its ready function agrees;
//     otherwise it closes the connection before the end of data, which
//     aborts the server's transaction (RFC 5321 3.8): the message cannot
//     have been accepted.
//   - A refused token gets one retry with Config.RefreshToken, on a new
//     connection (go-smtp answers a final 535 with "*", after which Postfix
//     disconnects); 535 5.7.139 (SMTP AUTH disabled) is not retried.
//   - Every wait is bounded: Config.CommandTimeout per reply and per 64 KiB
//     written, DataEndTimeout (10 minutes, RFC 5321 4.5.3.2.6) for the
//     reply to the end of data; a context ends an exchange by closing the
//     connection.
//
// Logs carry a per-connection "conn" id besides the caller's attributes,
// and never a token, password or message content.
package smtpsend
