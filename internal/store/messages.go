package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Message kinds.
const (
	KindEmail     = "email"      // a customer's email on a ticket
	KindReply     = "reply"      // an agent's reply sent by email
	KindAutoReply = "auto_reply" // an automatic reply: never opens a ticket
	KindBounce    = "bounce"     // a delivery status notification
	KindLoop      = "loop"       // mail from one of our own addresses
	KindForward   = "forward"    // an agent's forward whose original was recovered (kept, not shown as a message)
	// KindAck ("ack", outbox.go) is an acknowledgement of a new ticket.
)

// Message is one email, in or out, with its raw source kept as a blob.
type Message struct {
	ID            int64
	MailboxID     int64
	TicketID      int64 // 0 when the message opened no ticket
	Direction     string
	Kind          string
	IgnoredReason string // why a message with TicketID 0 opened no ticket
	DedupeKey     string // built by DedupeKey or RecoveredDedupeKey; unique per mailbox
	MessageID     string // as written (without <>); indexed through MessageIDKey
	InReplyTo     string
	References    []string
	FromAddress   string
	FromName      string
	To            string // display form, comma separated
	Cc            string
	ReplyTo       string
	Subject       string
	SentAt        time.Time // the Date header (zero when unknown)
	ReceivedAt    time.Time
	TextBody      string
	HTMLBody      string // as received; sanitize before showing
	RawSHA256     string
	RawSize       int64
	Bulk          bool
	NoAutoAnswer  bool // never answer automatically (bulk, auto-submitted, X-Auto-Response-Suppress)
	AutoReason    string
	Problems      []string
	AuthorUserID  int64
	// RecoveredFrom is the stored forward this message was recovered from
	// (0 for mail that arrived directly); RecoveredBy is who forwarded it.
	RecoveredFrom     int64
	RecoveredByUserID int64
	RecoveredBy       string
	Attachments       []Attachment
	// Delivery is how an outgoing message is doing: non-nil for outgoing
	// messages, filled by TicketMessages and Message.
	Delivery *Delivery
	// Search is TextBody as its ticket's search document holds it, when
	// computed ahead of the transaction (NewSearchText); InsertMessage
	// computes it otherwise.
	Search SearchText
}

// Attachment is a file carried by a message. Its content is a part of a
// raw message (Part names it), decoded when it is read (OpenAttachment);
// an attachment without a Part (an agent's upload, or one stored before
// schema 19) is a blob of its own, named by SHA256.
type Attachment struct {
	ID          int64
	MessageID   int64
	Filename    string
	ContentType string
	Size        int64  // decoded bytes
	SHA256      string // of the decoded content
	ContentID   string
	Inline      bool
	Part        Part
}

// Part is where an attachment's encoded bytes are in a raw message.
type Part struct {
	Blob     string // the raw message's SHA-256; "" when the content is a blob of its own
	Offset   int64
	Length   int64
	Encoding string // its Content-Transfer-Encoding, lowercased ("" for none)
}

const messageCols = `id, mailbox_id, COALESCE(ticket_id, 0), direction, kind, ignored_reason, dedupe_key, message_id,
	in_reply_to, refs, from_address, from_name, to_list, cc_list, reply_to, subject, sent_at, received_at,
	text_body, html_body, raw_sha256, raw_size, bulk, no_auto_answer, auto_reason, problems, COALESCE(author_user_id, 0),
	COALESCE(recovered_from, 0), COALESCE(recovered_by_user_id, 0), recovered_by`

func scanMessage(s interface{ Scan(...any) error }) (Message, error) {
	var m Message
	var refs, problems string
	var sent, received int64
	err := s.Scan(&m.ID, &m.MailboxID, &m.TicketID, &m.Direction, &m.Kind, &m.IgnoredReason, &m.DedupeKey, &m.MessageID,
		&m.InReplyTo, &refs, &m.FromAddress, &m.FromName, &m.To, &m.Cc, &m.ReplyTo, &m.Subject, &sent, &received,
		&m.TextBody, &m.HTMLBody, &m.RawSHA256, &m.RawSize, &m.Bulk, &m.NoAutoAnswer, &m.AutoReason, &problems, &m.AuthorUserID,
		&m.RecoveredFrom, &m.RecoveredByUserID, &m.RecoveredBy)
	m.SentAt, m.ReceivedAt = fromMS(sent), fromMS(received)
	m.References = strings.Fields(refs)
	if problems != "" {
		m.Problems = strings.Split(problems, "\n")
	}
	return m, err
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// InsertMessage stores a message and its attachments' metadata. A message
// whose DedupeKey the mailbox already has is ErrConflict.
func (tx *Tx) InsertMessage(ctx context.Context, m *Message) error {
	if m.DedupeKey == "" {
		return fmt.Errorf("insert message: no dedupe key")
	}
	if len(m.DedupeKey) > maxDedupeKeyBytes {
		return fmt.Errorf("insert message: dedupe key of %d bytes (build it with DedupeKey)", len(m.DedupeKey))
	}
	delete(tx.absentKeys, dedupeSlot{m.MailboxID, m.DedupeKey})
	id, err := tx.insert(ctx, `INSERT INTO messages (mailbox_id, ticket_id, direction, kind, ignored_reason, dedupe_key, message_id,
		message_id_key, in_reply_to, refs, from_address, from_name, to_list, cc_list, reply_to, subject, sent_at, received_at,
		text_body, html_body, raw_sha256, raw_size, bulk, no_auto_answer, auto_reason, problems, author_user_id,
		recovered_from, recovered_by_user_id, recovered_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.MailboxID, nullID(m.TicketID), m.Direction, m.Kind, m.IgnoredReason, m.DedupeKey, m.MessageID, threadKey(m),
		m.InReplyTo, strings.Join(m.References, " "), m.FromAddress, m.FromName, m.To, m.Cc, m.ReplyTo, m.Subject,
		ms(m.SentAt), ms(m.ReceivedAt), m.TextBody, m.HTMLBody, m.RawSHA256, m.RawSize, m.Bulk, m.NoAutoAnswer, m.AutoReason,
		strings.Join(m.Problems, "\n"), nullID(m.AuthorUserID),
		nullID(m.RecoveredFrom), nullID(m.RecoveredByUserID), m.RecoveredBy)
	if err != nil {
		return fmt.Errorf("insert message: %w", err)
	}
	m.ID = id
	if m.RecoveredFrom != 0 {
		tx.recovered = someRecovered
	}
	for i := range m.Attachments {
		a := &m.Attachments[i]
		a.MessageID = id
		a.ID, err = tx.insert(ctx, `INSERT INTO attachments (message_id, filename, content_type, size, sha256, content_id, inline,
			part_blob, part_offset, part_length, part_encoding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, a.Filename, a.ContentType, a.Size, a.SHA256, a.ContentID, a.Inline, a.Part.Blob, a.Part.Offset, a.Part.Length, a.Part.Encoding)
		if err != nil {
			return fmt.Errorf("insert attachment %q: %w", a.Filename, err)
		}
		if a.Part.Blob != "" {
			err = tx.keepBlob(ctx, a.Part.Blob)
		} else {
			err = tx.keepBlob(ctx, a.SHA256)
		}
		if err != nil {
			return fmt.Errorf("insert attachment %q: %w", a.Filename, err)
		}
	}
	if err := tx.keepBlob(ctx, m.RawSHA256); err != nil {
		return err
	}
	if searchIndexed(m) {
		return tx.indexAdd(ctx, m.TicketID, func() searchAddition { return messageAddition(m) })
	}
	return nil
}

// Message returns one message with its attachments.
func (c conn) Message(ctx context.Context, id int64) (Message, error) {
	m, err := scanMessage(c.queryRow(ctx, `SELECT `+messageCols+` FROM messages WHERE id = ?`, id))
	if err != nil {
		return Message{}, one(err)
	}
	atts, err := c.attachments(ctx, `message_id = ?`, id)
	if err != nil {
		return Message{}, err
	}
	m.Attachments = atts[id]
	if m.Direction == "out" {
		ds, err := c.deliveries(ctx, `o.message_id = ?`, id)
		if err != nil {
			return Message{}, err
		}
		m.Delivery = ds[id]
	}
	return m, nil
}

// MessageByDedupeKey finds a mailbox's message by its dedupe key.
func (c conn) MessageByDedupeKey(ctx context.Context, mailboxID int64, key string) (Message, error) {
	m, err := scanMessage(c.queryRow(ctx, `SELECT `+messageCols+` FROM messages WHERE mailbox_id = ? AND dedupe_key = ?`, mailboxID, key))
	return m, one(err)
}

// MessageByDedupeKey is conn.MessageByDedupeKey that first asks what
// PrefetchDedupeKeys learned: a key it found absent is answered without
// a statement.
func (tx *Tx) MessageByDedupeKey(ctx context.Context, mailboxID int64, key string) (Message, error) {
	if tx.absentKeys[dedupeSlot{mailboxID, key}] {
		return Message{}, ErrNotFound
	}
	return tx.conn.MessageByDedupeKey(ctx, mailboxID, key)
}

// dedupeSlot is a mailbox's dedupe key.
type dedupeSlot struct {
	mailbox int64
	key     string
}

// PrefetchDedupeKeys looks up a batch's dedupe keys in one statement
// (ingest asked for each email's, one statement each), so that
// MessageByDedupeKey answers those absent without one. A message this
// transaction stores under a key makes it present again. On PostgreSQL
// another writer may store a key meanwhile: its unique index still
// refuses the second row (ErrConflict), as when the lookups were apart.
func (tx *Tx) PrefetchDedupeKeys(ctx context.Context, mailboxID int64, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	present := map[string]bool{}
	err := inChunks(keys, func(chunk []string) error {
		args := make([]any, 0, len(chunk)+1)
		args = append(args, mailboxID)
		for _, k := range chunk {
			args = append(args, k)
		}
		found, err := tx.query(ctx, `SELECT dedupe_key FROM messages WHERE mailbox_id = ? AND dedupe_key IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`, args...)
		if err == nil {
			var ks []string
			if ks, err = scanColumn[string](found); err == nil {
				for _, k := range ks {
					present[k] = true
				}
			}
		}
		if err != nil {
			return fmt.Errorf("look up %d dedupe keys: %w", len(chunk), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if tx.absentKeys == nil {
		tx.absentKeys = map[dedupeSlot]bool{}
	}
	for _, k := range keys {
		if !present[k] {
			tx.absentKeys[dedupeSlot{mailboxID, k}] = true
		}
	}
	return nil
}

// TicketForMessageIDs returns the ticket of the newest message in the
// mailbox whose Message-ID is one of ids (used for threading replies).
func (c conn) TicketForMessageIDs(ctx context.Context, mailboxID int64, ids []string) (int64, error) {
	return c.TicketForMessageIDsIn(ctx, []int64{mailboxID}, ids)
}

// KeepsMessageIDs says whether a mailbox holds one of ids on no ticket
// (a duplicate of a copy another mailbox stored, an ignored email).
func (c conn) KeepsMessageIDs(ctx context.Context, mailboxID int64, ids []string) (bool, error) {
	if len(ids) == 0 {
		return false, nil
	}
	args := []any{mailboxID}
	for _, id := range ids {
		args = append(args, MessageIDKey(id))
	}
	var one int
	err := c.queryRow(ctx, `SELECT 1 FROM messages WHERE mailbox_id = ? AND ticket_id IS NULL
		AND message_id_key IN (?`+strings.Repeat(", ?", len(ids)-1)+`) LIMIT 1`, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// TicketForMessageIDsIn is TicketForMessageIDs over several mailboxes (an
// email addressed to several of ours may answer one stored in another).
func (c conn) TicketForMessageIDsIn(ctx context.Context, mailboxIDs []int64, ids []string) (int64, error) {
	if len(ids) == 0 || len(mailboxIDs) == 0 {
		return 0, ErrNotFound
	}
	args, list := idList(mailboxIDs)
	for _, id := range ids {
		args = append(args, MessageIDKey(id))
	}
	var ticketID int64
	err := c.queryRow(ctx, `SELECT ticket_id FROM messages WHERE mailbox_id IN (`+list+`) AND ticket_id IS NOT NULL
		AND message_id_key IN (?`+strings.Repeat(", ?", len(ids)-1)+`) ORDER BY id DESC LIMIT 1`, args...).Scan(&ticketID)
	return ticketID, one(err)
}

// NotificationFor finds the notification email (to an agent, on no
// ticket) that one of ids names, in a mailbox: the message an email
// answering it replies to.
func (c conn) NotificationFor(ctx context.Context, mailboxID int64, ids []string) (Message, error) {
	if len(ids) == 0 {
		return Message{}, ErrNotFound
	}
	args := []any{mailboxID, KindNotification}
	for _, id := range ids {
		args = append(args, MessageIDKey(id))
	}
	m, err := scanMessage(c.queryRow(ctx, `SELECT `+messageCols+` FROM messages WHERE mailbox_id = ? AND kind = ? AND ticket_id IS NULL
		AND message_id_key IN (?`+strings.Repeat(", ?", len(ids)-1)+`) ORDER BY id DESC LIMIT 1`, args...))
	return m, one(err)
}

// TicketMessages lists a ticket's messages, oldest first, with attachments.
// Messages of the same second are in the order they were stored: a
// fetched email's time is the IMAP server's INTERNALDATE, in whole
// seconds, so a customer's answer within the second of the reply it
// answers (whose time has milliseconds) would otherwise show above it.
func (c conn) TicketMessages(ctx context.Context, ticketID int64) ([]Message, error) {
	rows, err := c.query(ctx, `SELECT `+messageCols+` FROM messages WHERE ticket_id = ? AND kind <> ? ORDER BY received_at / 1000, id`, ticketID, KindForward)
	if err != nil {
		return nil, fmt.Errorf("list messages of ticket %d: %w", ticketID, err)
	}
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	atts, err := c.attachments(ctx, `message_id IN (SELECT id FROM messages WHERE ticket_id = ?)`, ticketID)
	if err != nil {
		return nil, err
	}
	ds, err := c.deliveries(ctx, `o.ticket_id = ?`, ticketID)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Attachments = atts[out[i].ID]
		if out[i].Direction == "out" {
			out[i].Delivery = ds[out[i].ID]
		}
	}
	return out, nil
}

func (c conn) attachments(ctx context.Context, where string, args ...any) (map[int64][]Attachment, error) {
	rows, err := c.query(ctx, `SELECT id, message_id, filename, content_type, size, sha256, content_id, inline,
		part_blob, part_offset, part_length, part_encoding FROM attachments WHERE `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list attachments: %w", err)
	}
	defer rows.Close()
	out := map[int64][]Attachment{}
	for rows.Next() {
		var a Attachment
		if err := rows.Scan(&a.ID, &a.MessageID, &a.Filename, &a.ContentType, &a.Size, &a.SHA256, &a.ContentID, &a.Inline,
			&a.Part.Blob, &a.Part.Offset, &a.Part.Length, &a.Part.Encoding); err != nil {
			return nil, err
		}
		out[a.MessageID] = append(out[a.MessageID], a)
	}
	return out, rows.Err()
}

// Attachment returns one attachment's metadata.
func (c conn) Attachment(ctx context.Context, id int64) (Attachment, error) {
	atts, err := c.attachments(ctx, `id = ?`, id)
	if err != nil {
		return Attachment{}, err
	}
	for _, list := range atts {
		return list[0], nil
	}
	return Attachment{}, ErrNotFound
}

// CountMessages counts the messages stored for a mailbox.
func (c conn) CountMessages(ctx context.Context, mailboxID int64) (total int, err error) {
	err = c.queryRow(ctx, `SELECT COUNT(*) FROM messages WHERE mailbox_id = ?`, mailboxID).Scan(&total)
	return total, err
}

// RecoveredTwin finds a message in the mailbox from the same sender with
// the same subject whose Date is within a minute of sent, or, when
// zoneAssumed (the date came without a time zone), a whole number of
// quarter hours (up to 14 hours) plus or minus a minute away. It is how a
// forwarded original without a Message-ID is recognised as mail Postdesk
// already has, and how the original arriving later is recognised as one
// recovered from a forward.
func (c conn) RecoveredTwin(ctx context.Context, mailboxID int64, from, subject string, sent time.Time, zoneAssumed bool) (Message, error) {
	window := time.Minute
	if zoneAssumed {
		window = 14*time.Hour + time.Minute
	}
	rows, err := c.query(ctx, `SELECT `+messageCols+` FROM messages WHERE mailbox_id = ? AND from_address = ?
		AND sent_at BETWEEN ? AND ? AND kind = ? AND ticket_id IS NOT NULL ORDER BY id`,
		mailboxID, from, ms(sent.Add(-window)), ms(sent.Add(window)), KindEmail)
	if err != nil {
		return Message{}, fmt.Errorf("look for a recovered twin: %w", err)
	}
	defer rows.Close()
	want := normSubject(CleanText(subject)) // as the stored subjects were
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return Message{}, err
		}
		if normSubject(m.Subject) != want {
			continue
		}
		d := m.SentAt.Sub(sent).Abs()
		if d <= time.Minute {
			return m, nil
		}
		if zoneAssumed {
			off := d % (15 * time.Minute)
			if off <= time.Minute || 15*time.Minute-off <= time.Minute {
				return m, nil
			}
		}
	}
	if err := rows.Err(); err != nil {
		return Message{}, err
	}
	return Message{}, ErrNotFound
}

// RecoveredOriginal finds an original recovered from a forward, in any
// mailbox, by its dedupe key (an attached original's Message-ID).
func (c conn) RecoveredOriginal(ctx context.Context, key string) (Message, error) {
	m, err := scanMessage(c.queryRow(ctx, `SELECT `+messageCols+` FROM messages WHERE dedupe_key = ? AND recovered_from IS NOT NULL
		AND ticket_id IS NOT NULL ORDER BY id LIMIT 1`, key))
	if err != nil {
		return Message{}, fmt.Errorf("find a recovered original: %w", one(err))
	}
	return m, nil
}

type recoveredState uint8

const (
	recoveredUnknown recoveredState = iota
	noneRecovered
	someRecovered
)

// MayHoldRecovered reports whether the database may hold an email
// recovered from a forward (RecoveredOriginal, RecoveredOriginals) for
// this transaction to find. On SQLite the transaction is the only writer:
// one probe of a partial index, at its first call, and every message it
// stores after, answer for the whole transaction (ingest asked the two
// queries of every email fetched, a fifth of a second of the single
// writer per 10,000, in a helpdesk that recovered none). On PostgreSQL
// another transaction may commit one meanwhile: always true.
func (tx *Tx) MayHoldRecovered(ctx context.Context) (bool, error) {
	if tx.d.name() != "sqlite" {
		return true, nil
	}
	if tx.recovered == recoveredUnknown {
		var found bool
		if err := tx.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM messages WHERE recovered_from IS NOT NULL)`).Scan(&found); err != nil {
			return true, fmt.Errorf("look for recovered originals: %w", err)
		}
		tx.recovered = noneRecovered
		if found {
			tx.recovered = someRecovered
		}
	}
	return tx.recovered == someRecovered, nil
}

// RecoveredOriginals lists the originals recovered from forwards, in any
// mailbox, from address and sent within window of sent (oldest first):
// the candidates for a customer's email arriving directly after an agent
// forwarded it.
func (c conn) RecoveredOriginals(ctx context.Context, from string, sent time.Time, window time.Duration) ([]Message, error) {
	rows, err := c.query(ctx, `SELECT `+messageCols+` FROM messages WHERE recovered_from IS NOT NULL AND from_address = ?
		AND sent_at BETWEEN ? AND ? AND kind = ? AND ticket_id IS NOT NULL ORDER BY id`,
		from, ms(sent.Add(-window)), ms(sent.Add(window)), KindEmail)
	if err != nil {
		return nil, fmt.Errorf("look for recovered originals: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// SameSubject reports whether two subjects are the same as twins are
// compared (case and spacing aside, cleaned as stored).
func SameSubject(stored, subject string) bool {
	return normSubject(stored) == normSubject(CleanText(subject))
}

func normSubject(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// TicketThreadTail returns what a reply on a ticket needs from its
// conversation, without reading all of it: the last n customer emails and
// replies (newest first, without attachments), and the message the reply
// answers (the customer's latest email that has a Message-ID, else the
// latest message that has one, acknowledgements aside; ErrNotFound in
// parent's place when none has).
func (c conn) TicketThreadTail(ctx context.Context, ticketID int64, n int) (tail []Message, parent *Message, err error) {
	rows, err := c.query(ctx, `SELECT `+messageCols+` FROM messages WHERE ticket_id = ? AND kind IN (?, ?)
		ORDER BY id DESC LIMIT ?`, ticketID, KindEmail, KindReply, n)
	if err != nil {
		return nil, nil, fmt.Errorf("read the conversation of ticket %d: %w", ticketID, err)
	}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			rows.Close()
			return nil, nil, err
		}
		tail = append(tail, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	for _, q := range []struct {
		where string
		kind  string
	}{
		{`direction = 'in' AND kind = ?`, KindEmail},
		{`kind <> ? AND kind <> '` + KindForward + `'`, KindAck},
	} {
		m, err := scanMessage(c.queryRow(ctx, `SELECT `+messageCols+` FROM messages WHERE ticket_id = ? AND `+q.where+`
			AND message_id <> '' ORDER BY id DESC LIMIT 1`, ticketID, q.kind))
		if err == nil {
			return tail, &m, nil
		}
		if err := one(err); !errors.Is(err, ErrNotFound) {
			return nil, nil, err
		}
	}
	return tail, parent, nil
}

// TicketAddressLists returns what names a ticket's people: its requester's
// address, then each email's and reply's sender, To, Cc and Reply-To as
// stored (lists as written: "Name <addr>, addr"). Automatic replies and
// bounces are not its people: anyone can send one that names a ticket.
func (c conn) TicketAddressLists(ctx context.Context, ticketID int64) ([]string, error) {
	rows, err := c.query(ctx, `SELECT requester_address, '', '', '' FROM tickets WHERE id = ?
		UNION ALL SELECT from_address, to_list, cc_list, reply_to FROM messages WHERE ticket_id = ? AND kind IN (?, ?)`, ticketID, ticketID, KindEmail, KindReply)
	if err != nil {
		return nil, fmt.Errorf("read the people of ticket %d: %w", ticketID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a, b, c, d string
		if err := rows.Scan(&a, &b, &c, &d); err != nil {
			return nil, err
		}
		for _, s := range []string{a, b, c, d} {
			if s != "" {
				out = append(out, s)
			}
		}
	}
	return out, rows.Err()
}

// MessageTicketID returns the ticket a message is on (0: none, as for a
// notification to an agent or an ignored email).
func (c conn) MessageTicketID(ctx context.Context, messageID int64) (int64, error) {
	var id sql.NullInt64
	err := c.queryRow(ctx, `SELECT ticket_id FROM messages WHERE id = ?`, messageID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("read the ticket of message %d: %w", messageID, err)
	}
	return id.Int64, nil
}

// LatestExchange returns the newest message of a ticket's conversation: a
// customer's email, or an agent's reply (not an acknowledgement, an
// automatic reply or a bounce); ErrNotFound when there is none.
func (c conn) LatestExchange(ctx context.Context, ticketID int64) (Message, error) {
	var m Message
	var received int64
	err := c.queryRow(ctx, `SELECT id, direction, from_name, from_address, COALESCE(author_user_id, 0), received_at FROM messages
		WHERE ticket_id = ? AND (direction = 'in' AND kind = ? OR direction = 'out' AND kind = ? AND COALESCE(author_user_id, 0) <> 0)
		ORDER BY id DESC LIMIT 1`, ticketID, KindEmail, KindReply).Scan(&m.ID, &m.Direction, &m.FromName, &m.FromAddress, &m.AuthorUserID, &received)
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, ErrNotFound
	}
	if err != nil {
		return Message{}, fmt.Errorf("read the latest message of ticket %d: %w", ticketID, err)
	}
	m.TicketID, m.ReceivedAt = ticketID, fromMS(received)
	return m, nil
}
