# cli/report/ - `tlsgate report` and `tlsgate notify`: reading event lines
# from logs (logscan), tallying them per account (tally), the output forms
# (outfmt), the report itself, notices by mail (mime, notify), following a
# log for notices at the first refusal (follow, sendq), and the setting that
# moves a mail program to TLS (advice).
CLI_SRCS += cli/report/follow.c cli/report/sendq.c cli/report/atomicfile.c cli/report/logscan.c cli/report/origin.c cli/report/recipients.c cli/report/tally.c cli/report/outfmt.c \
	    cli/report/report.c cli/report/mime.c cli/report/notify.c \
	    cli/report/advice.c
UNIT_SRCS_CLI += tests/unit/report/test-report.c tests/unit/report/test-notify.c \
		 tests/unit/report/test-follow.c \
		 tests/unit/report/test-origin.c tests/unit/report/test-brownout-report.c \
		 tests/unit/report/test-advice.c
