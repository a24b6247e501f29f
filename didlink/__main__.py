from didlink.cli.main import main

main()
