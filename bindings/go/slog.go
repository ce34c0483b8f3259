package kepmlog

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	// Level is the minimum level handled (default slog.LevelInfo).
	Level slog.Leveler
	// Category is the MetaData.Category when no category attribute is given ("" = the
	// logger's default category).
	Category string
	// CategoryKey names the top-level attribute that sets the category (default "category").
	CategoryKey string
	// CorrelationKey names the top-level attribute that sets MetaData.CorrelationId
	// (default "correlation_id").
	CorrelationKey string
}

// Handler is a log/slog handler writing to a Logger. Levels map onto the six KeeperLogger
// levels: below Debug → Verbose, Debug, Info, Warn → Warning, Error, Error+4 and above →
// Critical. The category comes from the CategoryKey attribute or the default; the other
// attributes are appended to the message as key=value (groups as group.key=value).
type Handler struct {
	log         *Logger
	opts        HandlerOptions
	category    string
	correlation string
	prefix      string // open groups, "a.b."
	attrs       string // pre-formatted attributes from WithAttrs
}

// NewHandler returns a slog handler over l; opts may be nil.
func NewHandler(l *Logger, opts *HandlerOptions) *Handler {
	h := &Handler{log: l}
	if opts != nil {
		h.opts = *opts
	}
	if h.opts.Level == nil {
		h.opts.Level = slog.LevelInfo
	}
	if h.opts.CategoryKey == "" {
		h.opts.CategoryKey = "category"
	}
	if h.opts.CorrelationKey == "" {
		h.opts.CorrelationKey = "correlation_id"
	}
	h.category = h.opts.Category
	return h
}

// SlogLevel maps a slog level onto a KeeperLogger level.
func SlogLevel(l slog.Level) Level {
	switch {
	case l < slog.LevelDebug:
		return LevelVerbose
	case l < slog.LevelInfo:
		return LevelDebug
	case l < slog.LevelWarn:
		return LevelInfo
	case l < slog.LevelError:
		return LevelWarning
	case l < slog.LevelError+4:
		return LevelError
	default:
		return LevelCritical
	}
}

// Enabled reports whether records at this level are handled.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.opts.Level.Level()
}

// Handle enqueues one record (never blocks). A dropped record returns ErrQueueFull.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	category, correlation := h.category, h.correlation
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		h.appendAttr(&b, h.prefix, a, &category, &correlation)
		return true
	})
	msg := strings.TrimLeft(b.String(), " ")
	if strings.TrimSpace(msg) == "" {
		msg = "(empty message)" // KeeperLogger rejects empty messages; slog allows them
	}
	return h.log.LogWith(SlogLevel(r.Level), strings.ToValidUTF8(category, "\uFFFD"),
		strings.ToValidUTF8(msg, "\uFFFD"), strings.ToValidUTF8(correlation, "\uFFFD"), "")
}

// WithAttrs returns a handler whose records carry these attributes.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		h2.appendAttr(&b, h.prefix, a, &h2.category, &h2.correlation)
	}
	h2.attrs = b.String()
	return &h2
}

// WithGroup returns a handler that qualifies later attribute keys with name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + name + "."
	return &h2
}

func (h *Handler) appendAttr(b *strings.Builder, prefix string, a slog.Attr, category, correlation *string) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		group := a.Value.Group()
		if len(group) == 0 {
			return
		}
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range group {
			h.appendAttr(b, p, g, category, correlation)
		}
		return
	}
	if prefix == "" && a.Key == h.opts.CategoryKey {
		*category = a.Value.String()
		return
	}
	if prefix == "" && a.Key == h.opts.CorrelationKey {
		*correlation = a.Value.String()
		return
	}
	b.WriteByte(' ')
	b.WriteString(prefix)
	b.WriteString(a.Key)
	b.WriteByte('=')
	b.WriteString(formatValue(a.Value))
}

func formatValue(v slog.Value) string {
	switch v.Kind() {
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case slog.KindString:
		s := v.String()
		if s == "" || strings.ContainsAny(s, " =\"\t") {
			return strconv.Quote(s)
		}
		return s
	default:
		s := v.String()
		if strings.ContainsAny(s, " =\"\t") {
			return strconv.Quote(s)
		}
		return s
	}
}
