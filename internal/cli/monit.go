package cli

import (
	"context"
	"errors"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/tendhq/tend/internal/tui"
)

func monitCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "monit",
		Aliases: []string{"dashboard", "dash"},
		GroupID: "look",
		Short:   "A live dashboard: cpu and memory over time, metadata and logs of every instance",
		Long: `monit fills the terminal with every app and instance: status, cpu, memory,
restarts, uptime and sparklines of cpu and memory over the last minutes, with
the selected row's metadata and live logs. It refreshes every second.

Keys: up/down or j/k select, r restart, s stop, S start (a stopped instance),
l reload, +/- scale, / filter by name, q or esc quit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !e.tty {
				return usageErr("monit draws a full-screen dashboard and needs a terminal (try tend ls or tend logs)")
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			c, err := e.client(ctx)
			if err != nil {
				return err
			}
			p := tea.NewProgram(tui.New(ctx, c, tui.Options{}), tea.WithContext(ctx), tea.WithOutput(e.out))
			_, err = p.Run()
			if errors.Is(err, tea.ErrInterrupted) || errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
				return nil // SIGINT or SIGTERM: leave quietly, as on q
			}
			return err
		},
	}
}
