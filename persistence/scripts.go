package persistence

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// runScripts runs n script calls in one Redis pipeline, by hash; queue adds
// call i to pipe (eval: with the script's text). The calls Redis did not
// know the script for are sent again with it, in a second pipeline, so the
// first use of a script costs one more round trip. Each returned command
// carries its own outcome.
func runScripts(ctx context.Context, rdb redis.UniversalClient, n int, queue func(pipe redis.Pipeliner, i int, eval bool) *redis.Cmd) []*redis.Cmd {
	cmds := make([]*redis.Cmd, n)
	pipe := rdb.Pipeline()
	for i := range n {
		cmds[i] = queue(pipe, i, false)
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
			cmds[i] = queue(pipe, i, true)
		}
		_, _ = pipe.Exec(ctx)
	}
	return cmds
}
