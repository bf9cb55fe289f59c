package tui

import (
	"context"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
)

// logRetry is how long the tail waits before following again after its
// stream ended (the daemon went away, or the instance was deleted).
const logRetry = 2 * time.Second

// logBatch bounds how many lines one message carries, so that a burst is
// drawn once rather than line by line, and still a few times a second.
const logBatch = 256

type (
	logMsg struct {
		gen   int
		lines []tend.LogLine
	}
	logEndMsg struct {
		gen int
		err error
	}
	logRetryMsg struct{ gen int }
)

// logTail follows the logs of one target. Each stream has a generation;
// messages of an older stream are dropped, so switching rows never mixes
// two tails.
type logTail struct {
	target string // "" when following nothing
	app    string // the app of target, whose describe is current
	gen    int
	lines  []tend.LogLine // the last logKeep lines, oldest first
	err    error          // why the stream ended
	ended  bool
	cancel context.CancelFunc
	ch     chan tend.LogLine
	done   *error // set before ch is closed
}

// start stops the current stream and follows target.
func (t *logTail) start(m *Model, target string) tea.Cmd {
	t.stop()
	t.gen++
	t.target, t.lines, t.err, t.ended = target, nil, nil, false
	if target == "" {
		return nil
	}
	ctx, cancel := context.WithCancel(m.ctx)
	ch := make(chan tend.LogLine, logBatch)
	done := new(error)
	t.cancel, t.ch, t.done = cancel, ch, done
	go func() {
		// Enough past lines to fill a tall pane at once.
		q := client.LogQuery{Target: target, Lines: 100, Follow: true}
		err := m.src.Logs(ctx, q, func(l tend.LogLine) error {
			select {
			case ch <- l:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		*done = err
		close(ch)
	}()
	return t.wait()
}

// wait returns a command that delivers the next lines of the stream.
func (t *logTail) wait() tea.Cmd {
	gen, ch, done := t.gen, t.ch, t.done
	return func() tea.Msg {
		l, ok := <-ch
		if !ok {
			return logEndMsg{gen, *done}
		}
		lines := []tend.LogLine{l}
		for len(lines) < logBatch {
			select {
			case l, ok := <-ch:
				if !ok {
					return logMsg{gen, lines}
				}
				lines = append(lines, l)
			default:
				return logMsg{gen, lines}
			}
		}
		return logMsg{gen, lines}
	}
}

func (t *logTail) stop() {
	if t.cancel != nil {
		t.cancel()
		t.cancel = nil
	}
}

func (t *logTail) update(msg tea.Msg, m *Model) tea.Cmd {
	switch msg := msg.(type) {
	case logMsg:
		if msg.gen != t.gen {
			return nil
		}
		t.lines = append(t.lines, msg.lines...)
		if n := len(t.lines); n > logKeep {
			t.lines = append(t.lines[:0:0], t.lines[n-logKeep:]...)
		}
		return t.wait()
	case logEndMsg:
		if msg.gen != t.gen || m.ctx.Err() != nil {
			return nil
		}
		t.ended, t.err = true, msg.err
		return tea.Tick(logRetry, func(time.Time) tea.Msg { return logRetryMsg{msg.gen} })
	case logRetryMsg:
		if msg.gen != t.gen {
			return nil
		}
		return t.start(m, t.target)
	}
	return nil
}
