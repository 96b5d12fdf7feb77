from apps.live_api.app import main

main()
