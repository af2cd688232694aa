from realisdance_cli.cli import main

main()
