# cli/probe/ - `tlsgate probe`, the TLS pre-flight check of a server's
# mail endpoints: targets, network, protocol dialogues, TLS, verdicts and
# output.
CLI_SRCS += cli/probe/probe.c cli/probe/target.c cli/probe/net.c \
	    cli/probe/dialog.c cli/probe/text.c cli/probe/tls.c \
	    cli/probe/endpoint.c cli/probe/verdict.c cli/probe/output.c
UNIT_SRCS_CLI += tests/unit/probe/test-dialog.c tests/unit/probe/test-net.c \
		 tests/unit/probe/test-target.c tests/unit/probe/test-verdict.c
