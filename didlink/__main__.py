from didlink.cli import main

main()
