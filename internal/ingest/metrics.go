package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what ingest does, for /metrics.
type Metrics struct {
	messages *prometheus.CounterVec
	tickets  prometheus.Counter
	// quarantined counts messages that could not be stored and were kept
	// aside with their source (see Quarantine).
	quarantined prometheus.Counter
}

// NewMetrics creates the counters and registers them on reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postdesk_messages_ingested_total",
			Help: "Messages ingested, by outcome (new_ticket, joined, duplicate, attached, ignored).",
		}, []string{"outcome"}),
		tickets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postdesk_tickets_created_total",
			Help: "Tickets opened by incoming mail.",
		}),
		quarantined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postdesk_messages_quarantined_total",
			Help: "Messages that could not be stored and were quarantined with their source (fetched or imported).",
		}),
	}
	for _, o := range []Outcome{NewTicket, Joined, Duplicate, Attached, Ignored} {
		m.messages.WithLabelValues(string(o))
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.tickets, m.quarantined)
	}
	return m
}

func (m *Metrics) observe(r Result) {
	if m == nil {
		return
	}
	m.messages.WithLabelValues(string(r.Outcome)).Inc()
	if r.Outcome == NewTicket {
		m.tickets.Inc()
	}
}

func (m *Metrics) quarantine() {
	if m != nil {
		m.quarantined.Inc()
	}
}
