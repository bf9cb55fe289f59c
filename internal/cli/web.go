package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/web"
)

// webCmd is PM2's web verb: the daemon serves a dashboard page.
func webCmd(e *env) *cobra.Command {
	var req tend.WebRequest
	cmd := &cobra.Command{
		Use:     "web",
		GroupID: "look",
		Short:   "Serve a web dashboard from the daemon and print a URL to open it",
		Long: `The daemon serves a dashboard page: every app and instance live, charts of
CPU, memory and connections over the last hour, the last reloads, logs, and
restart, reload, stop, start and scale. It listens on ` + web.DefaultAddr + ` unless --addr says otherwise (or
web_addr in config.yaml), and only on loopback unless --public.

tend web prints a URL with a one-time token: open it within ten minutes.
The page trades the token for a session cookie; run tend web again for
another browser. --read-only prints a token whose session can only look.
The dashboard serves until the daemon stops or tend web --stop.`,
		Example: `  tend web
  tend web --read-only
  tend web --addr 127.0.0.1:8090
  tend web --public --addr 0.0.0.0:9617   # other machines: the token is all that guards it
  tend web --stop`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Stop && (req.Addr != "" || req.Public || req.ReadOnly) {
				return usageErr("--stop takes no other flag")
			}
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.Web(cmd.Context(), req)
			if err != nil {
				return err
			}
			if req.Stop {
				fmt.Fprintln(e.out, "The dashboard is stopped.")
				return nil
			}
			kind := "a session that can act"
			if res.ReadOnly {
				kind = "a read-only session"
			}
			fmt.Fprintf(e.out, "Dashboard on %s. Open within 10 minutes, once, for %s:\n\n  %s\n\n", res.Addr, kind, res.URL)
			if res.Public {
				fmt.Fprintln(e.out, "It is reachable from other machines over plain HTTP: whoever holds this URL until it is opened can use it.")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Addr, "addr", "", "where to serve, host:port (default "+web.DefaultAddr+", or web_addr)")
	f.BoolVar(&req.Public, "public", false, "allow an address other than loopback")
	f.BoolVar(&req.ReadOnly, "read-only", false, "print a token that can only view")
	f.BoolVar(&req.Stop, "stop", false, "stop serving the dashboard")
	return cmd
}
