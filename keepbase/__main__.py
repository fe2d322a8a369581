from keepbase.cli import main

main()
