package boot

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/latchkey/latchkey/models"
)

// OutboxWorker sends the outbox: it polls for due messages (and wakes at
// once when Notify is called), sends each with a bounded time, and records
// the outcome. Failures are retried with backoff by models.Outbox until the
// attempt cap, then the message is dead and logged. Nothing is lost on a
// restart: pending mail is in the table and the next worker picks it up.
//
// Delivery is at least once (see models.Outbox). Mail failures are never
// seen by the person who asked: the request that enqueued the message has
// long been answered.
//
// The log never holds a body or a link (they may carry a live token); the
// recipient address appears only at debug level.
type OutboxWorker struct {
	outbox *models.Outbox
	sender Sender
	log    *slog.Logger
	cfg    WorkerConfig
	wake   chan struct{}
}

// WorkerConfig tunes the worker; zero values take the defaults.
type WorkerConfig struct {
	Poll        time.Duration // how often to look for due mail without a wake-up; default 1s
	SendTimeout time.Duration // bound on one send, also on the send in flight at shutdown; default 30s
	Batch       int           // messages read per round; default 10
	// MaxAge gives up on a message of a kind once it is older than this:
	// a reset or confirm link that expired during an SMTP outage is not
	// sent (it would only fail when clicked). Kinds not listed never expire.
	MaxAge map[string]time.Duration
	// Class is the kinds this worker sends (models.AllKinds by default).
	// The server runs one worker for mail and one for webhooks, over the
	// same table and leases, so a slow receiver never delays a reset mail.
	Class models.OutboxClass
	// KeepSent is how long sent and dead rows are kept as a record (and a
	// dead one for a retry) before the worker deletes them; default 30 days.
	KeepSent time.Duration
}

// NewOutboxWorker returns a worker; start it with Run.
func NewOutboxWorker(outbox *models.Outbox, sender Sender, log *slog.Logger, cfg WorkerConfig) *OutboxWorker {
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 30 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 10
	}
	if cfg.KeepSent <= 0 {
		cfg.KeepSent = 30 * 24 * time.Hour
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &OutboxWorker{outbox: outbox, sender: sender, log: log, cfg: cfg, wake: make(chan struct{}, 1)}
}

// Notify wakes the worker to look for due mail now. It never blocks.
func (w *OutboxWorker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run sends mail until ctx ends. On cancellation it finishes the send in
// flight (bounded by SendTimeout), records its outcome, and returns without
// starting another.
func (w *OutboxWorker) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	var lastPrune time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
		for ctx.Err() == nil {
			n, err := w.RunOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					w.log.Error("outbox: reading due mail", "err", err)
				}
				break
			}
			if n < w.cfg.Batch {
				break
			}
		}
		if ctx.Err() == nil && time.Since(lastPrune) >= time.Hour {
			lastPrune = time.Now()
			if _, err := w.outbox.PruneSent(ctx, w.outbox.Config().Now().Add(-w.cfg.KeepSent), 1000); err != nil && ctx.Err() == nil {
				w.log.Error("outbox: pruning sent mail", "err", err)
			}
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(w.cfg.Poll)
	}
}

// RunOnce sends one batch of due messages and returns how many it tried.
//
// The batch is claimed under one lease. A message is only started while
// its send and bookkeeping can end before that lease does; the rest of the
// batch is handed back at once (Outbox.Release), as it is at shutdown, so
// a slow mail server never lets another replica send a message this one is
// still sending, and nothing waits out a lease for nothing.
func (w *OutboxWorker) RunOnce(ctx context.Context) (int, error) {
	claimed := time.Now()
	due, err := w.outbox.ClaimClass(ctx, w.cfg.Class, w.cfg.Batch)
	if err != nil {
		return 0, err
	}
	for i, e := range due {
		if ctx.Err() != nil || i > 0 && time.Since(claimed)+w.cfg.SendTimeout+bookkeeping >= w.outbox.Config().Lease {
			w.release(ctx, due[i:])
			return i, nil
		}
		w.deliver(ctx, e)
	}
	return len(due), nil
}

// bookkeeping bounds recording a send's outcome (deliver).
const bookkeeping = 5 * time.Second

// release hands claimed messages back for the next round, on a context
// that survives shutdown.
func (w *OutboxWorker) release(ctx context.Context, es []models.Email) {
	ids := make([]int64, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeeping)
	defer cancel()
	if err := w.outbox.Release(rctx, ids); err != nil {
		w.log.Warn("outbox: handing back claimed mail; it waits for its lease instead", "count", len(ids), "err", err)
	}
}

// deliver sends one message and records the outcome. The send and the
// bookkeeping run on a context that survives shutdown but not SendTimeout,
// so an accepted message is marked sent before the database closes.
func (w *OutboxWorker) deliver(ctx context.Context, e models.Email) {
	if maxAge, ok := w.cfg.MaxAge[e.Kind]; ok && maxAge > 0 && w.outbox.Config().Now().Sub(e.Created) >= maxAge {
		if err := w.outbox.MarkDead(context.WithoutCancel(ctx), e.ID, "expired before it could be delivered"); err != nil {
			w.log.Error("outbox: recording an expired message", "id", e.ID, "kind", e.Kind, "err", err)
			return
		}
		w.log.Warn("mail dead: its link expired before it could be delivered", "id", e.ID, "kind", e.Kind,
			"attempts", e.Attempts, "last_error", redactAddresses(e.LastError))
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.SendTimeout)
	defer cancel()
	start := time.Now()
	err := w.sender.Send(sctx, e)
	took := time.Since(start)
	// Bookkeeping gets its own short deadline: a send that used the whole
	// timeout must still be recorded.
	bctx, bcancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeeping)
	defer bcancel()
	if err == nil {
		if merr := w.outbox.MarkSent(bctx, e.ID); merr != nil {
			// The server has it; the row still says pending, so it will be
			// sent again (at-least-once).
			w.log.Error("outbox: mail sent but not recorded; it may be sent twice", "id", e.ID, "kind", e.Kind, "err", merr)
			return
		}
		w.log.Info("mail sent", "id", e.ID, "kind", e.Kind, "attempt", e.Attempts+1, "took", took.Round(time.Millisecond))
		w.log.Debug("mail sent to", "id", e.ID, "to", e.To)
		return
	}
	f, merr := w.outbox.MarkFailed(bctx, e.ID, err)
	if merr != nil {
		if !errors.Is(merr, models.ErrNotFound) {
			w.log.Error("outbox: recording a failed send", "id", e.ID, "kind", e.Kind, "err", merr)
		}
		return
	}
	logErr := redactAddresses(f.LastError)
	if f.Dead {
		w.log.Error("mail dead: giving up", "id", e.ID, "kind", e.Kind, "attempts", f.Attempts,
			"permanent", models.IsPermanentMailError(err), "last_error", logErr)
		w.log.Debug("mail dead for", "id", e.ID, "to", e.To)
		return
	}
	w.log.Warn("mail send failed, will retry", "id", e.ID, "kind", e.Kind, "attempts", f.Attempts,
		"retry_in", f.NextAttemptAt.Sub(w.outbox.Config().Now()).Round(time.Second), "err", logErr)
}

// redactAddresses hides anything that looks like an email address (an SMTP
// error often quotes the recipient) so addresses stay out of info logs.
func redactAddresses(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	words := strings.Fields(s)
	for i, w := range words {
		if strings.Contains(w, "@") {
			words[i] = "[address]"
		}
	}
	return strings.Join(words, " ")
}
