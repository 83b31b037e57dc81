package persistence

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// runScripts runs n calls of script in one Redis pipeline, by hash; call
// gives call i's keys and arguments. The calls Redis did not know the
// script for are sent again with its text, in a second pipeline, so the
// first use of a script costs one more round trip. Each returned command
// carries its own outcome.
func runScripts(ctx context.Context, rdb redis.UniversalClient, script *redis.Script, n int, call func(i int) (keys []string, args []any)) []*redis.Cmd {
	cmds := make([]*redis.Cmd, n)
	pipe := rdb.Pipeline()
	for i := range n {
		keys, args := call(i)
		cmds[i] = script.EvalSha(ctx, pipe, keys, args...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	var again []int
	for i, c := range cmds {
		if err := c.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			again = append(again, i) // the script did not run: send it whole
		}
	}
	if len(again) > 0 {
		pipe := rdb.Pipeline()
		for _, i := range again {
			keys, args := call(i)
			cmds[i] = script.Eval(ctx, pipe, keys, args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	return cmds
}

// callsFor is how many script calls n items take at per a call.
func callsFor(n, per int) int { return (n + per - 1) / per }

// callPart is the items of call c when all go per to a call.
func callPart[T any](all []T, per, c int) []T {
	return all[c*per : min(len(all), (c+1)*per)]
}
