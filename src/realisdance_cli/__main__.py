from realisdance_cli.entry import run

run()
