package tui

import (
	"context"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
)

// Source is what the dashboard needs from the daemon. *client.Client
// satisfies it.
type Source interface {
	Instances(ctx context.Context) ([]tend.Instance, error)
	Describe(ctx context.Context, target string, withEnv bool) ([]tend.App, error)
	// Act runs action ("stop", "restart", "reload") on targets: ids or
	// app names. An action the daemon does not know is an error, which
	// the dashboard shows.
	Act(ctx context.Context, action string, targets []string) (tend.ActionResult, error)
	// Logs calls fn for each line of target until ctx ends (q.Follow).
	Logs(ctx context.Context, q client.LogQuery, fn func(tend.LogLine) error) error
}

// Scaler is implemented by sources that can change how many instances an
// app runs (*client.Client does): n instances, or n more when relative.
type Scaler interface {
	Scale(ctx context.Context, app string, n int, relative bool) (tend.ReloadResult, error)
}

var (
	_ Source = (*client.Client)(nil)
	_ Scaler = (*client.Client)(nil)
)
