from fairreprogram.cli import main

main()
